//! Rewrites of the parsed SQL that turn Druid (Calcite) dialect into SQL DataFusion plans the same
//! way: `?` dynamic parameters numbered in text order (`$1`, `$2`, ...), `FLOOR`/`CEIL(x TO unit)`
//! into `TIME_FLOOR`/`TIME_CEIL`, Druid's function names into DataFusion's (`APPROX_COUNT_DISTINCT`,
//! `STRLEN`), and Calcite's `EXPR$n` names for unnamed output columns.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CeilFloorKind, DateTimeField, DuplicateTreatment, Expr, Function, FunctionArguments, Ident,
    ObjectNamePart, Query, SelectItem, SetExpr, Statement, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Location;

use crate::error::QueryError;

/// Rewrites `statement` in place and returns how many `?` parameters it holds.
pub(crate) fn rewrite(statement: &mut Statement) -> Result<usize, QueryError> {
    let parameters = number_parameters(statement);
    let mut druidisms = Druidisms { error: None };
    let _ = statement.visit(&mut druidisms);
    if let Some(e) = druidisms.error {
        return Err(e);
    }
    if let Statement::Query(query) = statement {
        name_output_columns(query);
    }
    Ok(parameters)
}

/// Turns each `?` into `$n`, numbered by position in the SQL text: DataFusion binds parameters by
/// number, Druid by order of appearance, and the AST walk order is not always text order.
fn number_parameters(statement: &mut Statement) -> usize {
    struct Collect(Vec<Location>);
    impl VisitorMut for Collect {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(location) = question_mark(expr) {
                self.0.push(location);
            }
            ControlFlow::Continue(())
        }
    }
    struct Number(Vec<Location>);
    impl VisitorMut for Number {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Some(location) = question_mark(expr)
                && let Ok(index) = self.0.binary_search(&location)
                && let Expr::Value(ValueWithSpan { value, .. }) = expr
            {
                *value = Value::Placeholder(format!("${}", index + 1));
            }
            ControlFlow::Continue(())
        }
    }

    let mut collect = Collect(Vec::new());
    let _ = statement.visit(&mut collect);
    let mut locations = collect.0;
    locations.sort();
    locations.dedup();
    let count = locations.len();
    if count > 0 {
        let _ = statement.visit(&mut Number(locations));
    }
    count
}

/// Where a `?` placeholder starts in the SQL text.
fn question_mark(expr: &Expr) -> Option<Location> {
    match expr {
        Expr::Value(ValueWithSpan { value: Value::Placeholder(p), span }) if p == "?" => Some(span.start),
        _ => None,
    }
}

/// Druid spellings DataFusion does not plan, rewritten bottom-up.
struct Druidisms {
    error: Option<QueryError>,
}

impl VisitorMut for Druidisms {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let result = match expr {
            Expr::Floor { expr: arg, field: CeilFloorKind::DateTimeField(field) }
                if !matches!(field, DateTimeField::NoDateTime) =>
            {
                floor_to(field, arg).map(Some)
            }
            Expr::Ceil { expr: arg, field: CeilFloorKind::DateTimeField(field) }
                if !matches!(field, DateTimeField::NoDateTime) =>
            {
                ceil_to(field, arg).map(Some)
            }
            Expr::Function(function) => {
                rename_function(function);
                Ok(None)
            }
            _ => Ok(None),
        };
        match result {
            Ok(Some(replacement)) => *expr = replacement,
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Druid functions DataFusion knows under another name or form:
/// `APPROX_COUNT_DISTINCT(x)` (and its `_BUILTIN`, `_DS_HLL`, `_DS_THETA` forms, whose extra
/// sketch-size arguments are dropped) is answered exactly as `COUNT(DISTINCT x)`, which is within
/// any estimate's error and, unlike DataFusion's `approx_distinct`, reads dictionary-encoded
/// strings; `STRLEN` is `character_length`.
fn rename_function(function: &mut Function) {
    let [ObjectNamePart::Identifier(ident)] = function.name.0.as_mut_slice() else { return };
    if ident.quote_style.is_some() {
        return;
    }
    let name = ident.value.to_ascii_uppercase();
    if name == "STRLEN" {
        ident.value = "character_length".to_string();
    } else if matches!(
        name.as_str(),
        "APPROX_COUNT_DISTINCT"
            | "APPROX_COUNT_DISTINCT_BUILTIN"
            | "APPROX_COUNT_DISTINCT_DS_HLL"
            | "APPROX_COUNT_DISTINCT_DS_THETA"
    ) && let FunctionArguments::List(list) = &mut function.args
        && !list.args.is_empty()
    {
        ident.value = "count".to_string();
        list.args.truncate(1);
        list.duplicate_treatment = Some(DuplicateTreatment::Distinct);
    }
}

/// The units `FLOOR`/`CEIL(x TO unit)` accept, as the ISO 8601 period Druid plans them with.
fn time_unit(field: &DateTimeField) -> Option<&'static str> {
    Some(match field {
        DateTimeField::Second | DateTimeField::Seconds => "PT1S",
        DateTimeField::Minute | DateTimeField::Minutes => "PT1M",
        DateTimeField::Hour | DateTimeField::Hours => "PT1H",
        DateTimeField::Day | DateTimeField::Days => "P1D",
        DateTimeField::Week(None) | DateTimeField::Weeks => "P1W",
        DateTimeField::Month | DateTimeField::Months => "P1M",
        DateTimeField::Quarter => "P3M",
        DateTimeField::Year | DateTimeField::Years => "P1Y",
        _ => return None,
    })
}

fn unsupported_unit(function: &str, field: &DateTimeField) -> QueryError {
    QueryError::SqlPlanning(format!(
        "{function}(... TO {field}): unsupported time unit {field} (expected one of: SECOND, MINUTE, HOUR, \
         DAY, WEEK, MONTH, QUARTER, YEAR)"
    ))
}

/// `FLOOR(x TO unit)` is `TIME_FLOOR(x, period)`, as Druid plans it.
fn floor_to(field: &DateTimeField, arg: &Expr) -> Result<Expr, QueryError> {
    let period = time_unit(field).ok_or_else(|| unsupported_unit("FLOOR", field))?;
    template(&format!("time_floor({ARG}, '{period}')"), arg)
}

/// `CEIL(x TO unit)` is `TIME_CEIL(x, period)`.
fn ceil_to(field: &DateTimeField, arg: &Expr) -> Result<Expr, QueryError> {
    let period = time_unit(field).ok_or_else(|| unsupported_unit("CEIL", field))?;
    template(&format!("time_ceil({ARG}, '{period}')"), arg)
}

/// The identifier a [`template`] replaces with its argument.
const ARG: &str = "__braid_template_arg";

/// Parses `sql` (a fixed expression built here, never user text) and puts `arg` wherever
/// [`ARG`] appears.
fn template(sql: &str, arg: &Expr) -> Result<Expr, QueryError> {
    struct Substitute<'a>(&'a Expr);
    impl VisitorMut for Substitute<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if matches!(expr, Expr::Identifier(Ident { value, .. }) if value == ARG) {
                *expr = self.0.clone();
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| QueryError::Execution(format!("internal SQL template {sql:?} does not parse: {e}")))?;
    let _ = expr.visit(&mut Substitute(arg));
    Ok(expr)
}

/// Calcite names an output column that is neither a column reference nor aliased `EXPR$<i>`, `i`
/// its position in the select list (`SELECT COUNT(*) FROM t` answers `{"EXPR$0": ...}`), where
/// DataFusion would name it after the expression's text.
fn name_output_columns(query: &mut Query) {
    fn outermost_select(body: &mut SetExpr) -> Option<&mut Vec<SelectItem>> {
        match body {
            SetExpr::Select(select) => Some(&mut select.projection),
            SetExpr::Query(query) => outermost_select(&mut query.body),
            // A set operation's columns take the names of its first input's.
            SetExpr::SetOperation { left, .. } => outermost_select(left),
            _ => None,
        }
    }
    let Some(projection) = outermost_select(&mut query.body) else { return };
    for (i, item) in projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(expr) = item
            && !is_column_reference(expr)
        {
            let expr = std::mem::replace(expr, Expr::value(Value::Null));
            *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', format!("EXPR${i}")) };
        }
    }
}

fn is_column_reference(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) => is_column_reference(inner),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};

    use super::*;

    fn rewritten(sql: &str) -> (String, usize) {
        let mut statements = DFParserBuilder::new(sql).build().unwrap().parse_statements().unwrap();
        let Some(DFStatement::Statement(mut statement)) = statements.pop_front() else { panic!("{sql}") };
        let n = rewrite(&mut statement).unwrap();
        (statement.to_string(), n)
    }

    #[test]
    fn parameters_are_numbered_in_text_order() {
        let (sql, n) =
            rewritten("SELECT ? AS a FROM t WHERE x = ? AND y IN (SELECT z FROM u WHERE w > ?) LIMIT 3");
        assert_eq!(n, 3);
        assert_eq!(sql, "SELECT $1 AS a FROM t WHERE x = $2 AND y IN (SELECT z FROM u WHERE w > $3) LIMIT 3");
        assert_eq!(rewritten("SELECT 1").1, 0);
    }

    #[test]
    fn floor_and_ceil_to_a_unit() {
        let (sql, _) = rewritten("SELECT FLOOR(__time TO HOUR) AS h, CEIL(__time TO WEEK) AS w FROM t");
        assert_eq!(sql, "SELECT time_floor(__time, 'PT1H') AS h, time_ceil(__time, 'P1W') AS w FROM t");
        // A plain FLOOR is DataFusion's own.
        assert_eq!(rewritten("SELECT FLOOR(x) AS f FROM t").0, "SELECT FLOOR(x) AS f FROM t");

        let mut statements = DFParserBuilder::new("SELECT FLOOR(__time TO MILLENNIUM) FROM t")
            .build()
            .unwrap()
            .parse_statements()
            .unwrap();
        let Some(DFStatement::Statement(mut statement)) = statements.pop_front() else { panic!() };
        let e = rewrite(&mut statement).unwrap_err().to_string();
        assert!(e.starts_with("FLOOR(... TO MILLENNIUM): unsupported time unit MILLENNIUM"), "{e}");
    }

    #[test]
    fn unnamed_columns_are_named_like_calcite() {
        let (sql, _) = rewritten("SELECT channel, t.page, COUNT(*), SUM(added) AS s, (page) FROM t");
        assert_eq!(sql, "SELECT channel, t.page, COUNT(*) AS \"EXPR$2\", SUM(added) AS s, (page) FROM t");
        let (sql, _) = rewritten("SELECT 1 UNION ALL SELECT 2");
        assert_eq!(sql, "SELECT 1 AS \"EXPR$0\" UNION ALL SELECT 2");
        let (sql, _) = rewritten(
            "SELECT APPROX_COUNT_DISTINCT(page) AS u, APPROX_COUNT_DISTINCT_DS_HLL(page, 12) FILTER (WHERE x) \
             AS v, STRLEN(page) AS l FROM t",
        );
        assert_eq!(
            sql,
            "SELECT count(DISTINCT page) AS u, count(DISTINCT page) FILTER (WHERE x) AS v, \
             character_length(page) AS l FROM t"
        );
    }
}
