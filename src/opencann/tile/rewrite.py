"""Rewrites a kernel's `for` loops over `range(...)` into calls the tracer can see.

Tracing runs the kernel body once, so a loop whose trip count is a runtime value must become a call
with an explicit body function and explicit loop-carried variables:

    for k in range(lo, hi, step):          def _oc_body_3(k, _oc_carried):
        acc = acc + f(k)            ->         (acc,) = _oc_carried
                                               acc = acc + f(k)
                                               return (acc,)
                                           (acc,) = _oc_for(lo, hi, step, _oc_body_3, ('acc',),
                                                            (_oc_get(lambda: acc),), 3)

The carried variables are the names the body assigns. Line numbers are kept, so errors and
tracebacks point at the kernel's own source.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

from .errors import TileCompileError

__all__ = ["rewrite"]

_RANGE_NAMES = {"range"}
_TYPE_PARAMS = {"type_params": []} if "type_params" in ast.FunctionDef._fields else {}


def _is_range_call(node) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id in _RANGE_NAMES) or (
        isinstance(f, ast.Attribute) and f.attr == "range")


class _Assigned(ast.NodeVisitor):
    """Names bound by statements of a loop body (not inside nested functions)."""

    def __init__(self):
        self.names: list[str] = []

    def _add(self, name):
        if not name.startswith("_oc_") and name not in self.names:
            self.names.append(name)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self._add(node.id)

    def visit_FunctionDef(self, node):
        self._add(node.name)

    def visit_Lambda(self, node):
        pass


def _statements(body):
    """Every node of `body`, not descending into nested functions or lambdas."""
    todo = list(body)
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


class _LoopRewriter(ast.NodeTransformer):
    def __init__(self, filename):
        self.filename = filename
        self.count = 0

    def _fail(self, node, msg):
        return TileCompileError(f"{self.filename}:{node.lineno}: {msg}")

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        return node

    def visit_For(self, node):
        if _is_range_call(node.iter):
            if node.orelse:
                raise self._fail(node, "`for ... else` is not supported in tile kernels")
            if not isinstance(node.target, ast.Name):
                raise self._fail(node, "a tile loop variable must be a single name")
            for sub in _statements(node.body):
                if isinstance(sub, (ast.Break, ast.Continue, ast.Return)):
                    raise self._fail(sub, f"`{type(sub).__name__.lower()}` inside a tile loop is "
                                     "not supported; use masks (tile.where) instead")
        self.generic_visit(node)  # inner loops first
        if not _is_range_call(node.iter):
            return node
        call = node.iter
        args = list(call.args)
        if not 1 <= len(args) <= 3:
            raise self._fail(node, "range() takes 1 to 3 arguments")
        if len(args) == 1:
            args = [ast.Constant(0)] + args
        if len(args) == 2:
            args = args + [ast.Constant(1)]
        finder = _Assigned()
        for st in node.body:
            finder.visit(st)
        carried = [n for n in finder.names if n != node.target.id]
        self.count += 1
        n, line = self.count, node.lineno
        body_name = f"_oc_body_{n}"

        def tup(ctx):
            return ast.Tuple([ast.Name(c, ctx()) for c in carried], ctx())

        body = []
        if carried:
            body.append(ast.Assign([tup(ast.Store)], ast.Name("_oc_carried", ast.Load())))
        body += node.body
        body.append(ast.Return(tup(ast.Load)))
        fdef = ast.FunctionDef(
            name=body_name,
            args=ast.arguments(posonlyargs=[], args=[ast.arg(node.target.id), ast.arg("_oc_carried")],
                               kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=body, decorator_list=[], returns=None, **_TYPE_PARAMS)
        getters = ast.Tuple([ast.Call(ast.Name("_oc_get", ast.Load()), [ast.Lambda(
            ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            ast.Name(c, ast.Load()))], []) for c in carried], ast.Load())
        names = ast.Tuple([ast.Constant(c) for c in carried], ast.Load())
        for_call = ast.Call(ast.Name("_oc_for", ast.Load()),
                            args + [ast.Name(body_name, ast.Load()), names, getters, ast.Constant(line)],
                            [])
        after = ast.Assign([tup(ast.Store)], for_call) if carried else ast.Expr(for_call)
        out = [fdef, after]
        for o in out:
            ast.copy_location(o, node)
        return out


def _get(thunk):
    from .language import UNDEFINED

    try:
        return thunk()
    except NameError:
        return UNDEFINED


def rewrite(fn, loop_impl):
    """`fn` recompiled with its range loops turned into `loop_impl(lo, hi, step, body, ...)` calls.

    Returns (new function, set of code objects belonging to it).
    """
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as e:
        raise TileCompileError(f"cannot read the source of kernel {fn.__name__}: {e}") from e
    filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    tree = ast.parse(src)
    ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef):
        raise TileCompileError(f"{filename}:{fn.__code__.co_firstlineno}: a kernel must be a plain def")
    fdef.decorator_list = []
    fdef = _LoopRewriter(filename).visit(fdef)
    freevars = list(fn.__code__.co_freevars)
    maker = ast.FunctionDef(
        name="_oc_make",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in ["_oc_for", "_oc_get", *freevars]],
                           kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=[fdef, ast.Return(ast.Name(fdef.name, ast.Load()))],
        decorator_list=[], returns=None, **_TYPE_PARAMS)
    ast.copy_location(maker, fdef)
    module = ast.fix_missing_locations(ast.Module(body=[maker], type_ignores=[]))
    code = compile(module, filename, "exec")
    namespace: dict = {}
    exec(code, fn.__globals__, namespace)
    cells = [c.cell_contents for c in (fn.__closure__ or ())]
    new_fn = namespace["_oc_make"](loop_impl, _get, *cells)
    new_fn.__defaults__ = fn.__defaults__
    new_fn.__kwdefaults__ = fn.__kwdefaults__
    codes = set()

    def collect(c):
        codes.add(c)
        for k in c.co_consts:
            if hasattr(k, "co_code"):
                collect(k)

    collect(new_fn.__code__)
    return new_fn, codes
