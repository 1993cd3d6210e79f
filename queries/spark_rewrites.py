"""DuckDB constructs Spark has no counterpart for, rewritten in sqlglot's tree (the translator of
:mod:`queries.spark` applies each to every node of a view's query):

- :func:`functions`: ``to_days(n)`` as ``make_dt_interval(n)``, ``regexp_full_match`` as an anchored
  ``RLIKE``;
- :func:`qualify`: ``QUALIFY`` as a filtered subquery;
- :func:`lateral_unions`: a ``LATERAL`` union of correlated branches (Spark cannot decorrelate it)
  as a union of single-branch laterals.
"""

from __future__ import annotations

from typing import cast

from sqlglot import exp, transforms


def functions(node: exp.Expression) -> exp.Expression:
    """DuckDB functions Spark lacks, as their Spark equivalents."""
    if isinstance(node, exp.ToDays):
        return exp.Anonymous(this="make_dt_interval", expressions=[node.this.copy()])
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        anchored = (exp.Literal.string(f"^(?:{pattern.this})$") if isinstance(pattern, exp.Literal)
                    else exp.DPipe(this=exp.DPipe(this=exp.Literal.string("^(?:"), expression=pattern.copy()),
                                   expression=exp.Literal.string(")$")))
        return exp.RegexpLike(this=node.this.copy(), expression=anchored)
    return node


def qualify(node: exp.Expression) -> exp.Expression:
    """``QUALIFY`` as a filtered subquery: sqlglot's ``eliminate_qualify``, whose outer ``SELECT *``
    would also return the window columns it adds (``_w``): they are left out with ``* EXCEPT``."""
    if not isinstance(node, exp.Select) or not node.args.get("qualify"):
        return node
    star, named = node.is_star, set(node.named_selects)
    # sqlglot types what it returns as its base Expr; every node it builds is an Expression
    out = cast(exp.Expression, transforms.eliminate_qualify(node.copy()))
    if star and isinstance(out, exp.Select):
        inner = out.args["from_"].this.this               # FROM (the original select, window columns added)
        added = [n for n in inner.named_selects if n not in named]
        out.set("expressions", [exp.Star(except_=[exp.column(n) for n in added])] if added else [exp.Star()])
    return out


def lateral_unions(node: exp.Expression) -> exp.Expression:
    """``SELECT .. FROM y, LATERAL (b1 UNION ALL b2) q`` -> one select per branch, UNION ALL."""
    if not isinstance(node, exp.Select):
        return node
    for i, join in enumerate(node.args.get("joins") or []):
        lateral = join.this
        if not isinstance(lateral, exp.Lateral) or not isinstance(lateral.this, exp.Subquery):
            continue
        union = lateral.this.this
        if not isinstance(union, exp.Union) or union.args.get("distinct"):
            continue
        branches = _flatten_union(union)
        names = branches[0].named_selects
        selects = []
        for b in branches:
            b = b.copy()
            b.set("expressions", [exp.alias_(e.unalias().copy(), n) for e, n in zip(b.expressions, names, strict=True)])
            one = node.copy()
            one.args["joins"][i].this.this.set("this", b)
            selects.append(one)
        out: exp.Expression = selects[0]
        for s in selects[1:]:
            out = exp.Union(this=out, expression=s, distinct=False)
        return out
    return node


def _flatten_union(node: exp.Expression) -> list[exp.Select]:
    if isinstance(node, exp.Union) and not node.args.get("distinct") and not node.args.get("by_name"):
        return _flatten_union(node.this) + _flatten_union(node.expression)
    return [node]  # type: ignore[list-item]
