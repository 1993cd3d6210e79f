"""The store's views on Spark, translated at run time from the DuckDB ``.sql`` sources.

``queries/sql/*.sql`` stay the one source of truth. :func:`register_views` parses them with sqlglot
(DuckDB dialect), turns what Spark has no counterpart for into plain SQL, and has sqlglot write
Spark SQL. Every DuckDB-only construct is handled in :class:`_Translator` (the tree rewrites it
applies are in :mod:`queries.spark_rewrites`), and only there:

- scalar macros (``ms_period_label(s, e, fye)`` ...) are expanded inline, arguments substituted;
- table macros (``facts_at(as_of, as_recorded)`` ...) become one temporary view per distinct set
  of (literal) arguments, parameter defaults (``only_entity := NULL``) and named arguments
  applied; each is cached (lazily), since Spark would otherwise recompute it at every use; a
  table macro that reads a relation passed by name (``query_table(rows)``: the growth rules'
  stages, over their caller's CTEs) is inlined instead, as a subquery reading that name;
- ``getvariable('as_of')`` becomes the literal passed to :func:`register_views`;
- ``read_parquet(__EVENTS__, union_by_name = true)`` becomes the table's files read by Spark with
  ``mergeSchema`` (the same promise: older files with fewer columns still read);
- ``QUALIFY`` becomes a filtered subquery (sqlglot's ``eliminate_qualify``); ``UNION ALL BY NAME``
  an explicit column list (Spark reports each side's columns); a ``LATERAL`` union of correlated branches (Spark cannot
  decorrelate it) is distributed into a union of single-branch laterals;
- ``regexp_full_match`` becomes an anchored ``RLIKE``; ``to_days(n)`` becomes ``make_dt_interval(n)``.

Example:
    >>> from queries.spark import local_session, register_views      # doctest: +SKIP
    >>> spark = local_session()                                       # doctest: +SKIP
    >>> register_views(spark, "data/store", as_of="2025-01-01")       # doctest: +SKIP
    >>> spark.sql("SELECT * FROM growth WHERE entity = 'xiaomi'").show()  # doctest: +SKIP

On a local store with projections, ``growth`` reads them for the entities whose inputs did not
change since (with ``as_recorded``, or recorded anything after it), and computes the others
(:mod:`queries.spark_projections`); on an object store, or with ``METRICSTORE_PROJECTIONS=0``, it
is computed from the events.

The views read the files listed when they are registered: call :func:`register_views` again to see
commits made since.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlglot
from sqlglot import exp

from queries import spark_rewrites as rewrites
from queries.args import DateLike, to_date, to_timestamp
from queries.spark_projections import find as find_projection, growth_query
from queries.views import sql_sources
from store.log import TABLES

if TYPE_CHECKING:  # pyspark is an optional extra: `pip install metricstore[spark]`
    from pyspark.sql import SparkSession

#: The views registered on the session (the DuckDB views the .sql files create).
SPARK_VIEWS = ("event_log", "events", "entities", "metrics", "facts", "growth", "share")

_PLACEHOLDER_PREFIX = "__ms_files_"
_PLACEHOLDER = re.compile(r"__[A-Z]+__")
#: What a bare placeholder reads while its log has no file yet (mirrors ``queries.views.render``).
_EMPTY_FALLBACK = {"runs": "run_log_empty"}


def spark_path(store_uri: str | os.PathLike[str]) -> str:
    """The store root as a Hadoop path: ``s3://`` becomes ``s3a://``, a local folder absolute."""
    text = str(store_uri)
    if text.startswith("s3://"):
        return "s3a://" + text[len("s3://"):]
    if "://" in text:
        return text.rstrip("/")
    return Path(text).expanduser().absolute().as_uri()


def local_session(app_name: str = "metricstore", *, cores: int = 2, **conf: str) -> SparkSession:
    """A local SparkSession bound to 127.0.0.1 only, with UTC timestamps (what the views assume).

    For a cluster, build your own session and set ``spark.sql.session.timeZone=UTC``.

    Args:
        conf: further Spark settings (``{"spark.sql.warehouse.dir": "/tmp/wh"}``).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return (
        builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(max(2, cores)))
        .getOrCreate()
    )


def register_views(
    spark: SparkSession,
    store_uri: str | os.PathLike[str],
    as_of: DateLike | None = None,
    *,
    as_recorded: DateLike | None = None,
) -> list[str]:
    """Register ``events``, ``facts``, ``growth``, ``share``, ``entities`` (and ``event_log``,
    ``metrics``) as temporary views on ``spark`` over the store's files.

    Args:
        spark: a session; its ``spark.sql.session.timeZone`` should be UTC.
        store_uri: the store root: a local folder, ``file://...``, ``s3://bucket/prefix`` (read as
            ``s3a://``: the cluster needs hadoop-aws) or any Hadoop URI.
        as_of: publication time: every view shows what was public on this date.
        as_recorded: system time: every view shows what the store had recorded by then.

    ``growth`` reads a local store's projections where they answer (see the module docstring).

    Returns:
        The names of the views registered.
    """
    return _registered(spark, store_uri, to_date("as_of", as_of), to_timestamp("as_recorded", as_recorded))[1]


def spark_sql(
    spark: SparkSession, store_uri: str | os.PathLike[str], as_of: DateLike | None = None
) -> dict[str, str]:
    """The Spark SQL of every view (after :func:`register_views`' translation), by view name.

    Table macros appear as references to the temporary views ``__ms_<macro>_<n>``; read those
    from the same mapping.
    """
    return dict(_registered(spark, store_uri, to_date("as_of", as_of), None)[0].sql_text)


def _registered(spark: SparkSession, store_uri: str | os.PathLike[str], as_of: dt.date | None,
                as_recorded: dt.datetime | None) -> tuple[_Translator, list[str]]:
    """Every view registered, ``growth`` read from the projections where they answer: Spark
    would otherwise compute the whole view from the events (queries.spark_projections)."""
    tr = _Translator(spark, spark_path(store_uri), as_of, as_recorded)
    pending = find_projection(spark, store_uri, as_of, as_recorded)    # before Spark lists the logs' files
    names = tr.register_all()
    query = None if pending is None else growth_query(spark, pending)
    if query is not None:
        tr._register("growth", cast(exp.Expression, sqlglot.parse_one(query, read="duckdb")))
    return tr, names


class _Translator:
    """Turns the DuckDB sources into Spark temporary views (see the module docstring)."""

    def __init__(self, spark: SparkSession, root: str, as_of: dt.date | None, as_recorded: dt.datetime | None) -> None:
        self.spark = spark
        self.root = root
        self.variables: dict[str, exp.Expression] = {
            "as_of": exp.Null() if as_of is None else exp.cast(exp.Literal.string(as_of.isoformat()), "DATE"),
            "as_recorded": exp.Null() if as_recorded is None else exp.cast(
                exp.Literal.string(as_recorded.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")), "TIMESTAMP"),
        }
        self.scalar: dict[str, tuple[list[str], exp.Expression]] = {}
        self.table: dict[str, tuple[list[str], exp.Expression]] = {}
        self.views: list[tuple[str, exp.Expression]] = []
        self.specialised: dict[tuple[str, str], str] = {}
        self.sql_text: dict[str, str] = {}
        self.files: dict[str, str | None] = {}
        self._names = itertools.count(1)
        self.defaults: dict[str, dict[str, exp.Expression]] = {}
        for _name, text in sql_sources():
            for stmt in sqlglot.parse(self._strip_defaults(text), read="duckdb"):
                # sqlglot types what it parses as its base Expr; every node it builds is an Expression
                self._collect(cast("exp.Expression | None", stmt))

    def _strip_defaults(self, text: str) -> str:
        """``MACRO f(a, b := NULL)``: sqlglot cannot parse parameter defaults; note and drop them."""
        def header(m: re.Match[str]) -> str:
            params = []
            for part in _split_top(m["params"]):
                name, sep, default = part.partition(":=")
                params.append(name.strip())
                if sep:
                    value = cast(exp.Expression, sqlglot.parse_one(default.strip(), read="duckdb"))  # (as above)
                    self.defaults.setdefault(m["name"].lower(), {})[name.strip()] = value
            return f"{m['head']}{m['name']}({', '.join(params)}) AS"

        return _MACRO_HEADER.sub(header, text)

    # -- reading the sources ---------------------------------------------------------------
    def _collect(self, stmt: exp.Expression | None) -> None:
        if not isinstance(stmt, exp.Create):
            return
        kind = (stmt.args.get("kind") or "").upper()
        if kind == "MACRO":
            udf = stmt.this
            name = udf.this.name.lower()
            params = [p.name for p in udf.expressions]
            body = stmt.expression
            target = self.table if isinstance(body, exp.Query) else self.scalar
            target[name] = (params, body)
        elif kind == "VIEW":
            self.views.append((stmt.this.name.lower(), stmt.expression))

    # -- registering -----------------------------------------------------------------------
    def register_all(self, wanted: tuple[str, ...] = SPARK_VIEWS) -> list[str]:
        """Register the ``wanted`` views and the views they read (others are left out: each costs
        Spark an analysis at registration)."""
        needed = self._closure(wanted)
        names = []
        for name, query in self.views:
            if name in needed:
                self._register(name, query)
                names.append(name)
        return names

    def _closure(self, wanted: tuple[str, ...]) -> set[str]:
        views = dict(self.views)
        seen: set[str] = set()
        todo = [w for w in wanted if w in views]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            bodies = [views[name]] if name in views else []
            if name in self.table:
                bodies.append(self.table[name][1])
            for body in bodies:
                for t in body.find_all(exp.Table):
                    ref = t.this.name.lower() if isinstance(t.this, (exp.Anonymous, exp.Identifier)) else t.name.lower()
                    if ref in views or ref in self.table:
                        todo.append(ref)
        return {n for n in seen if n in views}

    def _files_view(self, placeholder: str) -> str | None:
        """The temporary view over a placeholder's files (``__EVENTS__`` -> ``<root>/events``),
        or None when the folder holds no Parquet file yet."""
        folder = placeholder.strip("_").lower()
        name = _PLACEHOLDER_PREFIX + folder
        if folder not in self.files:
            from pyspark.errors import AnalysisException

            reader = self.spark.read.option("mergeSchema", "true")
            if folder in TABLES:  # the known schema spares Spark a pass over every footer
                from pyspark.sql.pandas.types import from_arrow_schema
                from pyspark.sql.types import StructField, StructType

                known = from_arrow_schema(TABLES[folder][0])
                reader = reader.schema(StructType([StructField(f.name, f.dataType, True) for f in known.fields]))
            try:
                df = reader.parquet(f"{self.root}/{folder}")
            except AnalysisException:  # no such folder, or no file to infer a schema from
                self.files[folder] = None
            else:
                df.createOrReplaceTempView(name)
                self.files[folder] = name
        return self.files[folder]

    def _register(self, name: str, query: exp.Expression) -> None:
        sql = self.to_spark(query)
        self.sql_text[name] = sql
        self.spark.catalog.dropTempView(name)  # uncaches what an earlier registration cached
        self.spark.sql(sql).createOrReplaceTempView(name)

    def to_spark(self, query: exp.Expression) -> str:
        """Translate one DuckDB query (macros and variables resolved) to Spark SQL."""
        tree = query.copy()
        tree = tree.transform(self._variables)
        tree = tree.transform(self._tables)
        tree = self._expand_scalars(tree)
        tree = tree.transform(rewrites.functions)
        tree = tree.transform(rewrites.qualify)
        tree = tree.transform(rewrites.lateral_unions)
        tree = self._by_name(tree)
        return tree.sql(dialect="spark")

    # -- rewrites --------------------------------------------------------------------------
    def _variables(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "getvariable":
            key = node.expressions[0].name
            return self.variables[key].copy() if key in self.variables else exp.Null()
        return node

    def _tables(self, node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table):
            return node
        call = node.this
        if isinstance(call, exp.ReadParquet) or (isinstance(call, exp.Anonymous) and call.name.lower() == "read_parquet"):
            placeholder = call.expressions[0].name  # __EVENTS__: the table's folder, in capitals
            view = self._files_view(placeholder)
            if view is None:
                raise FileNotFoundError(f"{self.root}: no Parquet files for {placeholder}")
            return _table_ref(view, node.alias)
        if isinstance(call, exp.Identifier) and _PLACEHOLDER.fullmatch(call.name):
            # a bare placeholder is a whole table: its files, or (as queries.views.render does)
            # the named empty view while the log has no file yet
            view = self._files_view(call.name) or _EMPTY_FALLBACK[call.name.strip("_").lower()]
            return _table_ref(view, node.alias)
        if not isinstance(call, exp.Anonymous):
            return node
        fname = call.name.lower()
        if fname in self.table and _reads_relation(self.table[fname][1]):
            return self._inline(fname, call.expressions, node.alias or fname)
        if fname in self.table:
            return _table_ref(self._specialise(fname, call.expressions), node.alias)
        return node

    def _inline(self, macro: str, args: list[exp.Expression], alias: str) -> exp.Expression:
        """A table macro that reads a relation by name (``query_table(rows)``, a CTE of the caller
        that a temporary view could not see) as a subquery of its body, the name in place."""
        params, body = self.table[macro]
        names = {p: a.name for p, a in zip(params, args, strict=True)}

        def relation(node: exp.Expression) -> exp.Expression:
            call = node.this if isinstance(node, exp.Table) else None
            if isinstance(call, exp.Anonymous) and call.name.lower() == "query_table":
                return _table_ref(names[call.expressions[0].name], node.alias)
            return node

        inlined = body.copy().transform(relation).transform(self._tables)
        return exp.Subquery(this=inlined, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    def _specialise(self, macro: str, args: list[exp.Expression]) -> str:
        params, body = self.table[macro]
        values: dict[str, exp.Expression] = dict(self.defaults.get(macro, {}))
        positional = [a for a in args if not isinstance(a, exp.PropertyEQ)]
        values.update(zip(params, positional, strict=False))
        values.update({a.this.name: a.expression for a in args if isinstance(a, exp.PropertyEQ)})
        values = {k: v.transform(self._variables) for k, v in values.items()}
        key = (macro, ", ".join(f"{p}={_unparen(values[p]).sql(dialect='duckdb')}" for p in params))
        if key not in self.specialised:
            name = f"__ms_{macro}_{next(self._names)}"
            self._register(name, _substitute(body, values))
            # Spark inlines a view at each use: growth reads facts_at four times over. Caching the
            # building blocks computes each once (lazily, at the first query).
            self.spark.sql(f"CACHE LAZY TABLE {name}")
            self.specialised[key] = name
        return self.specialised[key]

    def _expand_scalars(self, tree: exp.Expression) -> exp.Expression:
        def expand(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Anonymous) and node.name.lower() in self.scalar:
                params, body = self.scalar[node.name.lower()]
                out = _substitute(body, dict(zip(params, node.expressions, strict=True)))
                return exp.Paren(this=self._expand_scalars(out))
            return node

        return tree.transform(expand)

    def _by_name(self, tree: exp.Expression) -> exp.Expression:
        """``a UNION ALL BY NAME b`` -> explicit columns, NULL for a column one side lacks."""
        for node in list(tree.find_all(exp.Union)):
            if not node.args.get("by_name"):
                continue
            left, right = node.this, node.expression
            lcols, rcols = self._columns(left, node), self._columns(right, node)
            cols = lcols + [c for c in rcols if c not in lcols]

            def side(q: exp.Expression, have: list[str]) -> exp.Select:
                projs = [exp.column(c, quoted=True) if c in have else exp.alias_(exp.Null(), c, quoted=True)
                         for c in cols]
                return exp.select(*projs).from_(exp.Subquery(this=q.copy(), alias=exp.TableAlias(
                    this=exp.to_identifier("__ms_side"))))

            new = exp.Union(this=side(left, lcols), expression=side(right, rcols), distinct=False)
            if node is tree:
                tree = new
            else:
                node.replace(new)
        return tree

    def _columns(self, query: exp.Expression, anchor: exp.Expression) -> list[str]:
        """The output columns of ``query`` as Spark resolves them (with the CTEs before it)."""
        ctes: list[exp.Expression] = []
        ancestors = {id(a) for a in _ancestors(anchor)}
        for node in _ancestors(anchor):
            with_ = node.args.get("with_") or node.args.get("with")
            if isinstance(with_, exp.With):
                outer = []
                for cte in with_.expressions:
                    if id(cte) in ancestors:
                        break
                    outer.append(cte.copy())
                ctes = outer + ctes
        probe = exp.select("*").from_(exp.Subquery(this=query.copy(), alias=exp.TableAlias(
            this=exp.to_identifier("__ms_probe"))))
        if ctes:
            probe.set("with_", exp.With(expressions=ctes))
        return list(self.spark.sql(probe.sql(dialect="spark")).columns)


_MACRO_HEADER = re.compile(
    r"(?P<head>CREATE\s+(?:OR\s+REPLACE\s+)?MACRO\s+)(?P<name>\w+)\s*\((?P<params>[^()]*(?:\([^()]*\)[^()]*)*)\)\s*AS",
    re.IGNORECASE)


def _reads_relation(body: exp.Expression) -> bool:
    """Whether a table macro's body reads a relation passed by name (``query_table(rows)``)."""
    return any(isinstance(t.this, exp.Anonymous) and t.this.name.lower() == "query_table"
               for t in body.find_all(exp.Table))


def _split_top(text: str) -> list[str]:
    """Split a parameter list on its top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in (*parts, cur) if p.strip()]


def _unparen(e: exp.Expression) -> exp.Expression:
    while isinstance(e, exp.Paren):
        e = e.this
    return e


def _ancestors(node: exp.Expression) -> list[exp.Expression]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return cast("list[exp.Expression]", out)   # (sqlglot types a parent as its base Expr)


def _table_ref(name: str, alias: str) -> exp.Table:
    table = exp.to_table(name)
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _substitute(body: exp.Expression, values: dict[str, Any]) -> exp.Expression:
    """The macro body with each parameter (a bare column of its name) replaced by its argument."""
    def sub(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in values:
            value = values[node.name]
            while isinstance(value, exp.Paren):
                value = value.this
            atom = isinstance(value, (exp.Literal, exp.Null, exp.Cast, exp.Column))
            return value.copy() if atom else exp.Paren(this=value.copy())
        return node

    return body.copy().transform(sub)
