"""What an object keeps alive: every object reachable from it through references."""
import gc
import types


def _referents(obj):
    if isinstance(obj, types.FunctionType):  # its closure and defaults, not its module's globals
        return [c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not None] + list(obj.__defaults__ or ())
    if isinstance(obj, (types.ModuleType, type)):
        return []
    return gc.get_referents(obj)


def reachable(root, opaque=(), limit=500_000):
    """Objects reachable from ``root``; instances of ``opaque`` are listed but not looked into."""
    seen, stack, found = {id(root)}, [root], []
    while stack and len(seen) < limit:
        obj = stack.pop()
        found.append(obj)
        if isinstance(obj, opaque):
            continue
        for ref in _referents(obj):
            if id(ref) not in seen:
                seen.add(id(ref))
                stack.append(ref)
    return found
