"""A small, safe expression language for computed fields and filters.

Expressions use Python's syntax but only a whitelist of it: literals, field
names, arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y`` and a
fixed set of functions.  The syntax tree is compiled once into closures; no
configuration text is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]


class ExpressionError(ValueError):
    """The expression text is not allowed or does not parse."""


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _concat(*values: Any) -> str:
    return "".join("" if v is None else str(v) for v in values)


def _year(value: Any) -> int | None:
    return value.year if isinstance(value, dt.date) else None


def _none_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return None if any(a is None for a in args) else fn(*args)

    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "coalesce": _coalesce,
    "concat": _concat,
    "upper": _none_safe(str.upper),
    "lower": _none_safe(str.lower),
    "trim": _none_safe(str.strip),
    "len": _none_safe(len),
    "abs": _none_safe(abs),
    "round": _none_safe(round),
    "min": _none_safe(min),
    "max": _none_safe(max),
    "str": _none_safe(str),
    "int": _none_safe(int),
    "decimal": _none_safe(lambda v: Decimal(str(v))),
    "year": _year,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def compile_expression(text: str, names: set[str] | None = None) -> Compiled:
    """Compile ``text``; with ``names``, unknown field names are rejected up front."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    return _Compiler(text, names).visit(tree.body)


def referenced_names(text: str) -> set[str]:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - calls


class _Compiler:
    def __init__(self, text: str, names: set[str] | None) -> None:
        self.text = text
        self.names = names

    def fail(self, what: str) -> ExpressionError:
        allowed = ", ".join(sorted(FUNCTIONS))
        return ExpressionError(
            f"{what} is not allowed in expression {self.text!r} (functions: {allowed})"
        )

    def visit(self, node: ast.expr) -> Compiled:
        if isinstance(node, ast.Constant):
            value = node.value
            return lambda env: value
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BoolOp):
            return self._boolean(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, body = self.visit(node.test), self.visit(node.body)
            other = self.visit(node.orelse)
            return lambda env: body(env) if test(env) else other(env)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = [self.visit(e) for e in node.elts]
            return lambda env: tuple(i(env) for i in items)
        raise self.fail(type(node).__name__)

    def _name(self, name: str) -> Compiled:
        if name in ("None", "True", "False"):
            constant = {"None": None, "True": True, "False": False}[name]
            return lambda env: constant
        if self.names is not None and name not in self.names:
            raise ExpressionError(
                f"unknown name '{name}' in expression {self.text!r}; known: "
                + ", ".join(sorted(self.names))
            )
        return lambda env: env.get(name)

    def _binary(self, node: ast.BinOp) -> Compiled:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.fail(f"operator {type(node.op).__name__}")
        left, right = self.visit(node.left), self.visit(node.right)

        def run(env: Env) -> Any:
            a, b = left(env), right(env)
            if a is None or b is None:
                return None
            return op(a, b)

        return run

    def _unary(self, node: ast.UnaryOp) -> Compiled:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        if isinstance(node.op, ast.USub):
            return lambda env: None if (v := operand(env)) is None else -v
        raise self.fail(f"operator {type(node.op).__name__}")

    def _boolean(self, node: ast.BoolOp) -> Compiled:
        parts = [self.visit(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def run(env: Env) -> Any:
            value: Any = None
            for part in parts:
                value = part(env)
                if bool(value) != is_and:  # `and` stops at a falsy, `or` at a truthy operand
                    return value
            return value

        return run

    def _compare(self, node: ast.Compare) -> Compiled:
        first = self.visit(node.left)
        steps = []
        for op_node, right in zip(node.ops, node.comparators, strict=True):
            steps.append((_COMPARE[type(op_node)], self.visit(right)))

        def run(env: Env) -> bool:
            left = first(env)
            for op, right_fn in steps:
                right = right_fn(env)
                try:
                    if not op(left, right):
                        return False
                except TypeError:
                    return False
                left = right
            return True

        return run

    def _call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            raise self.fail("this call")
        fn = FUNCTIONS[node.func.id]
        args = [self.visit(a) for a in node.args]
        return lambda env: fn(*(a(env) for a in args))
