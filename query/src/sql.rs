//! Druid SQL over DataFusion: `POST /druid/v2/sql` requests in, Druid's result formats out.
//!
//! A request flows through [`execute`]: the SQL text is parsed with DataFusion's parser, the
//! Druid (Calcite) dialect is rewritten into what DataFusion plans the same way (`?` parameters,
//! `FLOOR(__time TO HOUR)`, Calcite's `EXPR$n` column names), tables are checked so a missing one
//! fails as Druid words it, and the plan runs in a session from [`new_session`] whose default
//! catalog and schema are both `druid` (the dataSources) next to Druid's `INFORMATION_SCHEMA`.
//! Identifiers are case-sensitive, as in Druid. The rows come back as a [`SqlAnswer`] that
//! [`SqlAnswer::encode`] writes in any result format.

mod answer;
mod information_schema;
mod request;
mod rewrite;
mod types;

use std::sync::{Arc, Weak};

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, SchemaProvider};
use datafusion::common::SchemaError;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use serde_json::Value;

pub use answer::{SqlAnswer, SqlColumn};
pub use information_schema::{INFORMATION_SCHEMA, InformationSchemaProvider};
pub use request::{ResultFormat, SqlParameter, SqlRequest};

use crate::error::{QueryError, invalid};

/// The catalog holding every schema, named as Druid names it.
pub const DRUID_CATALOG: &str = "druid";
/// The schema whose tables are the dataSources; also the default, so `FROM wikipedia` works.
pub const DRUID_SCHEMA: &str = "druid";

/// A session for Druid SQL: catalog `druid` with schema `druid` (the `druid` provider's tables,
/// the default for unqualified names) and [`INFORMATION_SCHEMA`], case-sensitive identifiers, UTC
/// for `CURRENT_TIMESTAMP`, and braid's SQL functions registered by [`register_functions`].
pub fn new_session(druid: Arc<dyn SchemaProvider>, target_partitions: usize) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(target_partitions)
        .with_default_catalog_and_schema(DRUID_CATALOG, DRUID_SCHEMA)
        .with_create_default_catalog_and_schema(false)
        // Druid's own INFORMATION_SCHEMA replaces DataFusion's lower-case one.
        .with_information_schema(false);
    let options = config.options_mut();
    // Druid SQL identifiers are case-sensitive: `channel` and `Channel` are different columns.
    // Function names stay case-insensitive (DataFusion lower-cases them regardless).
    options.sql_parser.enable_ident_normalization = false;
    options.execution.time_zone = Some("UTC".to_string());
    let ctx = SessionContext::new_with_config(config);

    let catalog = Arc::new(MemoryCatalogProvider::new());
    let weak: Weak<MemoryCatalogProvider> = Arc::downgrade(&catalog);
    let information_schema = Arc::new(InformationSchemaProvider::new(weak));
    // Registering into a MemoryCatalogProvider cannot fail; it only returns a replaced schema.
    let _ = catalog.register_schema(DRUID_SCHEMA, druid);
    let _ = catalog.register_schema(INFORMATION_SCHEMA, information_schema);
    ctx.register_catalog(DRUID_CATALOG, catalog as Arc<dyn CatalogProvider>);
    register_functions(&ctx);
    ctx
}

/// Registers braid's Druid SQL functions (the time functions of [`crate::granularity`]) on `ctx`.
/// DataFusion lower-cases function names before looking them up, so `TIME_FLOOR` finds
/// `time_floor`.
pub fn register_functions(ctx: &SessionContext) {
    for function in crate::granularity::sql_functions() {
        ctx.register_udf(function);
    }
}

/// Runs one Druid SQL request: checks its context, plans the SQL with its parameters and collects
/// the rows. Bad SQL, unknown tables and columns are [`QueryError::SqlPlanning`]; a malformed
/// request (parameters, context) is [`QueryError::InvalidInput`].
pub async fn execute(ctx: &SessionContext, request: &SqlRequest) -> Result<SqlAnswer, QueryError> {
    check_context(&request.context)?;
    let plan = plan(&ctx.state(), &request.query, &request.parameters).await?;
    let frame = ctx.execute_logical_plan(plan).await.map_err(engine_error)?;
    let schema = frame.schema().as_arrow().clone();
    let batches = frame.collect().await.map_err(engine_error)?;
    SqlAnswer::new(&schema, &batches).map_err(|e| QueryError::Execution(format!("encoding SQL results: {e}")))
}

/// Plans `sql` with `parameters` bound to its `?` placeholders, in text order.
async fn plan(
    state: &SessionState,
    sql: &str,
    parameters: &[SqlParameter],
) -> Result<LogicalPlan, QueryError> {
    let mut statement = parse(sql)?;
    let placeholders = rewrite::rewrite(&mut statement)?;
    if placeholders != parameters.len() {
        return Err(invalid!(
            "\"parameters\": the query has {placeholders} dynamic parameter(s) (?) but {} value(s) were given",
            parameters.len()
        ));
    }
    let values =
        parameters.iter().enumerate().map(|(i, p)| p.to_scalar(i + 1)).collect::<Result<Vec<_>, _>>()?;
    let statement = DFStatement::Statement(Box::new(statement));
    check_tables(state, &statement)?;
    let plan = state.statement_to_plan(statement).await.map_err(engine_error)?;
    if values.is_empty() { Ok(plan) } else { plan.with_param_values(values).map_err(engine_error) }
}

/// Parses exactly one SELECT statement (a trailing `;` is fine).
fn parse(sql: &str) -> Result<Statement, QueryError> {
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(engine_error)?;
    if statements.len() != 1 {
        return Err(QueryError::SqlPlanning(format!(
            "SQL must hold exactly one statement, found {}",
            statements.len()
        )));
    }
    match statements.pop_front() {
        Some(DFStatement::Statement(statement)) if matches!(*statement, Statement::Query(_)) => {
            Ok(*statement)
        }
        Some(other) => {
            let text = other.to_string();
            let keyword = text.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            Err(QueryError::SqlPlanning(format!("only SELECT queries are supported, not {keyword}")))
        }
        None => Err(QueryError::SqlPlanning("SQL must hold exactly one statement, found 0".into())),
    }
}

/// Fails like Druid when the statement reads a table that does not exist: "Object 'foo' not
/// found", or "... not found within 'druid'" for a qualified name.
fn check_tables(state: &SessionState, statement: &DFStatement) -> Result<(), QueryError> {
    let not_found = |name: &str, within: Option<&str>| {
        QueryError::SqlPlanning(match within {
            Some(parent) => format!("Object '{name}' not found within '{parent}'"),
            None => format!("Object '{name}' not found"),
        })
    };
    for reference in state.resolve_table_references(statement).map_err(engine_error)? {
        let qualified = !matches!(reference, TableReference::Bare { .. });
        let catalog_given = matches!(reference, TableReference::Full { .. });
        let resolved = reference.resolve(DRUID_CATALOG, DRUID_SCHEMA);
        let Some(catalog) = state.catalog_list().catalog(&resolved.catalog) else {
            return Err(not_found(&resolved.catalog, None));
        };
        let Some(schema) = catalog.schema(&resolved.schema) else {
            let within = catalog_given.then_some(resolved.catalog.as_ref());
            return Err(not_found(&resolved.schema, within));
        };
        if !schema.table_exist(&resolved.table) {
            return Err(not_found(&resolved.table, qualified.then_some(resolved.schema.as_ref())));
        }
    }
    Ok(())
}

/// Druid's `sqlTimeZone` context parameter changes what timestamps mean; braid answers in UTC
/// only, so any other zone is refused rather than silently ignored.
fn check_context(context: &serde_json::Map<String, Value>) -> Result<(), QueryError> {
    const UTC: [&str; 7] = ["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "UCT"];
    match context.get("sqlTimeZone") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(zone)) if UTC.iter().any(|u| u.eq_ignore_ascii_case(zone.trim())) => Ok(()),
        Some(zone) => Err(invalid!(
            "context parameter \"sqlTimeZone\": {zone} is not supported: braid answers SQL in UTC only \
             (set it to \"UTC\" or leave it out)"
        )),
    }
}

/// Classifies an engine error, in Druid's words where Druid's differ: parser errors keep the
/// parser's message, unknown columns and tables read as Calcite reports them.
fn engine_error(e: DataFusionError) -> QueryError {
    match e.find_root() {
        DataFusionError::SQL(parser_error, _) => QueryError::SqlPlanning(parser_error.to_string()),
        DataFusionError::SchemaError(error, _) => match error.as_ref() {
            SchemaError::FieldNotFound { field, .. } => {
                QueryError::SqlPlanning(format!("Column '{}' not found in any table", field.name))
            }
            _ => QueryError::from_datafusion(e),
        },
        DataFusionError::Plan(message) => match table_not_found(message) {
            Some(table) => QueryError::SqlPlanning(format!("Object '{table}' not found")),
            None => QueryError::from_datafusion(e),
        },
        _ => QueryError::from_datafusion(e),
    }
}

/// The table name in DataFusion's "table 'druid.druid.foo' not found".
fn table_not_found(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("table '")?;
    let (name, _) = rest.split_once("' not found")?;
    name.rsplit('.').next()
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringDictionaryBuilder, TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
    use datafusion::catalog::{MemTable, MemorySchemaProvider};
    use serde_json::json;

    use super::*;

    /// 2013-08-31T01:02:33Z and friends.
    const T0: i64 = 1_377_910_953_000;
    const HOUR: i64 = 3_600_000;

    /// A `wikipedia` dataSource shaped like the timeline's tables.
    fn session() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("__time", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
            Field::new(
                "channel",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "page",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("added", DataType::Int64, true),
            Field::new("count", DataType::Int64, true),
            Field::new("delta", DataType::Float64, true),
        ]));
        let rows: [(i64, &str, &str, i64, i64, f64); 4] = [
            (T0, "#en.wikipedia", "Rust", 10, 1, 1.5),
            (T0 + HOUR / 2, "#en.wikipedia", "Druid", 20, 2, -2.0),
            (T0 + HOUR, "#fr.wikipedia", "Paris", 5, 1, 0.25),
            (T0 + 25 * HOUR, "#de.wikipedia", "Berlin", 7, 3, 4.0),
        ];
        let dict = |values: Vec<&str>| -> ArrayRef {
            let mut b = StringDictionaryBuilder::<Int32Type>::new();
            values.into_iter().for_each(|v| b.append_value(v));
            Arc::new(b.finish())
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(TimestampMillisecondArray::from(rows.map(|r| r.0).to_vec()).with_timezone("UTC")),
                dict(rows.map(|r| r.1).to_vec()),
                dict(rows.map(|r| r.2).to_vec()),
                Arc::new(Int64Array::from(rows.map(|r| r.3).to_vec())),
                Arc::new(Int64Array::from(rows.map(|r| r.4).to_vec())),
                Arc::new(Float64Array::from(rows.map(|r| r.5).to_vec())),
            ],
        )
        .unwrap();
        let druid = Arc::new(MemorySchemaProvider::new());
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        druid.register_table("wikipedia".into(), Arc::new(table)).unwrap();
        new_session(druid, 2)
    }

    async fn run(request: SqlRequest) -> Result<Value, QueryError> {
        let answer = execute(&session(), &request).await?;
        let (content_type, body) = answer.encode(&request);
        assert_eq!(content_type, "application/json");
        Ok(serde_json::from_slice(&body).unwrap())
    }

    async fn sql(query: &str) -> Result<Value, QueryError> {
        run(SqlRequest::new(query)).await
    }

    fn planning_message(result: Result<Value, QueryError>) -> String {
        match result {
            Err(QueryError::SqlPlanning(m)) => m,
            other => panic!("expected a planning error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn select_one_and_upper_case_functions() {
        assert_eq!(sql("SELECT 1").await.unwrap(), json!([{"EXPR$0": 1}]));
        assert_eq!(
            sql(r#"SELECT COUNT(*), SUM("count") FROM wikipedia"#).await.unwrap(),
            json!([{"EXPR$0": 4, "EXPR$1": 7}])
        );
        assert_eq!(
            sql("select channel, sum(added) from wikipedia group by 1 order by 2 desc limit 3")
                .await
                .unwrap(),
            json!([
                {"channel": "#en.wikipedia", "EXPR$1": 30},
                {"channel": "#de.wikipedia", "EXPR$1": 7},
                {"channel": "#fr.wikipedia", "EXPR$1": 5},
            ])
        );
        assert_eq!(
            sql("SELECT APPROX_COUNT_DISTINCT(channel) AS c, STRLEN('abc') AS l FROM wikipedia")
                .await
                .unwrap(),
            json!([{"c": 3, "l": 3}])
        );
        // ORDER BY and HAVING may repeat an expression the select list leaves unnamed.
        assert_eq!(
            sql("SELECT channel, SUM(added) FROM wikipedia GROUP BY channel HAVING SUM(added) > 6 \
                 ORDER BY SUM(added)")
            .await
            .unwrap(),
            json!([{"channel": "#de.wikipedia", "EXPR$1": 7}, {"channel": "#en.wikipedia", "EXPR$1": 30}])
        );
    }

    #[tokio::test]
    async fn table_names_qualified_and_quoted() {
        for from in ["druid.wikipedia", "\"wikipedia\"", "\"druid\".\"wikipedia\"", "druid.druid.wikipedia"] {
            let rows = sql(&format!("SELECT COUNT(*) AS n FROM {from}")).await.unwrap();
            assert_eq!(rows, json!([{"n": 4}]), "FROM {from}");
        }
    }

    #[tokio::test]
    async fn identifiers_are_case_sensitive() {
        assert_eq!(
            planning_message(sql("SELECT Channel FROM wikipedia").await),
            "Column 'Channel' not found in any table"
        );
        assert_eq!(
            planning_message(sql("SELECT COUNT(*) FROM Wikipedia").await),
            "Object 'Wikipedia' not found"
        );
        assert_eq!(
            planning_message(sql("SELECT COUNT(*) FROM DRUID.wikipedia").await),
            "Object 'DRUID' not found"
        );
        let rows = sql(r#"SELECT "page" AS "Page" FROM wikipedia WHERE added = 5"#).await.unwrap();
        assert_eq!(rows, json!([{"Page": "Paris"}]));
    }

    #[tokio::test]
    async fn unknown_tables_and_bad_sql() {
        assert_eq!(planning_message(sql("SELECT * FROM foo").await), "Object 'foo' not found");
        assert_eq!(
            planning_message(sql("SELECT * FROM druid.foo").await),
            "Object 'foo' not found within 'druid'"
        );
        assert_eq!(planning_message(sql("SELECT * FROM nope.foo").await), "Object 'nope' not found");
        // A CTE is not a table.
        let rows =
            sql("WITH foo AS (SELECT page FROM wikipedia) SELECT COUNT(*) AS n FROM foo").await.unwrap();
        assert_eq!(rows, json!([{"n": 4}]));

        let m = planning_message(sql("SELEC 1").await);
        assert!(m.starts_with("sql parser error: Expected: an SQL statement, found: SELEC"), "{m}");
        let m = planning_message(sql("SELECT * FROM wikipedia WHERE").await);
        assert!(m.starts_with("sql parser error: Expected: an expression, found: EOF"), "{m}");
        let m = planning_message(sql("SELECT 1; SELECT 2").await);
        assert_eq!(m, "SQL must hold exactly one statement, found 2");
        let m = planning_message(sql("DROP TABLE wikipedia").await);
        assert_eq!(m, "only SELECT queries are supported, not DROP");
        let m = planning_message(sql("INSERT INTO wikipedia SELECT * FROM wikipedia").await);
        assert_eq!(m, "only SELECT queries are supported, not INSERT");
    }

    #[tokio::test]
    async fn floor_and_ceil_time_to_a_unit() {
        let rows =
            sql("SELECT FLOOR(__time TO HOUR) AS h, COUNT(*) AS n FROM wikipedia GROUP BY 1 ORDER BY 1")
                .await
                .unwrap();
        assert_eq!(
            rows,
            json!([
                {"h": "2013-08-31T01:00:00.000Z", "n": 2},
                {"h": "2013-08-31T02:00:00.000Z", "n": 1},
                {"h": "2013-09-01T02:00:00.000Z", "n": 1},
            ])
        );
        let rows =
            sql("SELECT FLOOR(__time TO DAY) AS d, CEIL(__time TO DAY) AS c, FLOOR(__time TO MONTH) AS m \
                        FROM wikipedia WHERE added = 10")
            .await
            .unwrap();
        assert_eq!(
            rows,
            json!([{"d": "2013-08-31T00:00:00.000Z", "c": "2013-09-01T00:00:00.000Z", "m": "2013-08-01T00:00:00.000Z"}])
        );
        // Druid's own spelling, through the time functions registered on the session.
        let rows = sql("SELECT TIME_FLOOR(__time, 'PT1H') AS h, COUNT(*) AS n FROM wikipedia \
                        WHERE __time < TIMESTAMP '2013-09-01 00:00:00' GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
        assert_eq!(
            rows,
            json!([{"h": "2013-08-31T01:00:00.000Z", "n": 2}, {"h": "2013-08-31T02:00:00.000Z", "n": 1}])
        );
        // CEIL of an instant already on the boundary is itself.
        let rows = sql("SELECT CEIL(FLOOR(__time TO HOUR) TO HOUR) AS c FROM wikipedia WHERE added = 10")
            .await
            .unwrap();
        assert_eq!(rows, json!([{"c": "2013-08-31T01:00:00.000Z"}]));
    }

    #[tokio::test]
    async fn timestamp_literals_and_current_timestamp() {
        let rows =
            sql("SELECT COUNT(*) AS n FROM wikipedia WHERE __time >= TIMESTAMP '2013-08-31 01:30:00' \
                        AND __time < TIMESTAMP '2013-09-01 00:00:00'")
            .await
            .unwrap();
        assert_eq!(rows, json!([{"n": 2}]));
        let rows =
            sql("SELECT COUNT(*) AS n FROM wikipedia WHERE __time >= CURRENT_TIMESTAMP - INTERVAL '1' DAY")
                .await
                .unwrap();
        assert_eq!(rows, json!([{"n": 0}]));
        let rows =
            sql("SELECT COUNT(*) AS n FROM wikipedia WHERE __time < CURRENT_TIMESTAMP - INTERVAL '1' DAY")
                .await
                .unwrap();
        assert_eq!(rows, json!([{"n": 4}]));
        let rows =
            sql("SELECT MAX(__time) AS latest FROM wikipedia WHERE __time < '2013-09-01'").await.unwrap();
        assert_eq!(rows, json!([{"latest": "2013-08-31T02:02:33.000Z"}]));
    }

    #[tokio::test]
    async fn dynamic_parameters() {
        let mut request = SqlRequest::new(
            "SELECT page FROM wikipedia WHERE channel = ? AND added > ? AND __time >= ? ORDER BY page",
        );
        request.parameters = serde_json::from_value(json!([
            {"type": "VARCHAR", "value": "#en.wikipedia"},
            {"type": "BIGINT", "value": 5},
            {"type": "TIMESTAMP", "value": "2013-08-31 00:00:00"},
        ]))
        .unwrap();
        assert_eq!(run(request.clone()).await.unwrap(), json!([{"page": "Druid"}, {"page": "Rust"}]));

        request.parameters.truncate(2);
        let e = run(request.clone()).await.unwrap_err();
        assert!(
            matches!(&e, QueryError::InvalidInput(m) if m.contains("3 dynamic parameter(s) (?) but 2 value(s)")),
            "{e:?}"
        );

        let mut request = SqlRequest::new("SELECT COUNT(*) AS n FROM wikipedia WHERE delta > ?");
        request.parameters = vec![SqlParameter { type_name: "DOUBLE".into(), value: json!(0.5) }];
        assert_eq!(run(request).await.unwrap(), json!([{"n": 2}]));
    }

    #[tokio::test]
    async fn sql_time_zone_must_be_utc() {
        let mut request = SqlRequest::new("SELECT 1");
        request.context.insert("sqlTimeZone".into(), json!("Etc/UTC"));
        assert!(run(request.clone()).await.is_ok());
        request.context.insert("sqlTimeZone".into(), json!("America/Los_Angeles"));
        let e = run(request).await.unwrap_err();
        assert!(
            matches!(&e, QueryError::InvalidInput(m) if m.contains("\"sqlTimeZone\": \"America/Los_Angeles\" is not supported")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn every_result_format_end_to_end() {
        let query = "SELECT __time, channel, added, delta FROM wikipedia WHERE added = 5";
        let expect = [
            (
                "object",
                false,
                false,
                "application/json",
                "[{\"__time\":\"2013-08-31T02:02:33.000Z\",\"channel\":\"#fr.wikipedia\",\"added\":5,\"delta\":0.25}]\n",
            ),
            (
                "array",
                true,
                true,
                "application/json",
                "[[\"__time\",\"channel\",\"added\",\"delta\"],[\"LONG\",\"STRING\",\"LONG\",\"DOUBLE\"],[\"2013-08-31T02:02:33.000Z\",\"#fr.wikipedia\",5,0.25]]\n",
            ),
            (
                "objectLines",
                true,
                false,
                "text/plain",
                "{\"__time\":null,\"channel\":null,\"added\":null,\"delta\":null}\n{\"__time\":\"2013-08-31T02:02:33.000Z\",\"channel\":\"#fr.wikipedia\",\"added\":5,\"delta\":0.25}\n\n",
            ),
            (
                "arrayLines",
                false,
                false,
                "text/plain",
                "[\"2013-08-31T02:02:33.000Z\",\"#fr.wikipedia\",5,0.25]\n\n",
            ),
            (
                "csv",
                true,
                true,
                "text/csv",
                "__time,channel,added,delta\nLONG,STRING,LONG,DOUBLE\n2013-08-31T02:02:33.000Z,#fr.wikipedia,5,0.25\n\n",
            ),
        ];
        let ctx = session();
        for (format, header, types, content_type, body) in expect {
            let request = SqlRequest::from_json(
                json!({"query": query, "resultFormat": format, "header": header, "typesHeader": types})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
            let answer = execute(&ctx, &request).await.unwrap();
            let (ct, bytes) = answer.encode(&request);
            assert_eq!((ct, String::from_utf8(bytes).unwrap().as_str()), (content_type, body), "{format}");
        }
        // sqlTypesHeader reports DataFusion's result types in Druid's names.
        let mut request = SqlRequest::new(
            "SELECT __time, channel, COUNT(*) AS n, AVG(added) AS a, added > 5 AS big \
                                           FROM wikipedia GROUP BY 1, 2, 5 ORDER BY 1 LIMIT 1",
        );
        (request.header, request.types_header, request.sql_types_header) = (true, true, true);
        request.result_format = ResultFormat::Object;
        assert_eq!(
            run(request).await.unwrap(),
            json!([
                {
                    "__time": {"type": "LONG", "sqlType": "TIMESTAMP"},
                    "channel": {"type": "STRING", "sqlType": "VARCHAR"},
                    "n": {"type": "LONG", "sqlType": "BIGINT"},
                    "a": {"type": "DOUBLE", "sqlType": "DOUBLE"},
                    "big": {"type": "LONG", "sqlType": "BOOLEAN"},
                },
                {"__time": "2013-08-31T01:02:33.000Z", "channel": "#en.wikipedia", "n": 1, "a": 10.0, "big": true},
            ])
        );
    }

    // The statements pydruid's SQLAlchemy dialect (pydruid/db/sqlalchemy.py) sends, verbatim.
    const GET_SCHEMA_NAMES: &str = "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA";
    const HAS_TABLE: &str = "
            SELECT COUNT(*) > 0 AS exists_
              FROM INFORMATION_SCHEMA.TABLES
             WHERE TABLE_NAME = 'wikipedia'
        ";
    const GET_TABLE_NAMES: &str = "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES";
    const GET_COLUMNS: &str = "
            SELECT COLUMN_NAME,
                   DATA_TYPE,
                   IS_NULLABLE,
                   COLUMN_DEFAULT
              FROM INFORMATION_SCHEMA.COLUMNS
             WHERE TABLE_NAME = 'wikipedia'
        ";
    const GET_COLUMNS_JDBC: &str = "
            SELECT COLUMN_NAME,
                   JDBC_TYPE,
                   IS_NULLABLE,
                   COLUMN_DEFAULT
              FROM INFORMATION_SCHEMA.COLUMNS
             WHERE TABLE_NAME = 'wikipedia'
        ";

    #[tokio::test]
    async fn pydruid_dialect_statements() {
        assert_eq!(
            sql(GET_SCHEMA_NAMES).await.unwrap(),
            json!([{"SCHEMA_NAME": "INFORMATION_SCHEMA"}, {"SCHEMA_NAME": "druid"}])
        );
        assert_eq!(sql(HAS_TABLE).await.unwrap(), json!([{"exists_": true}]));
        assert_eq!(
            sql(&HAS_TABLE.replace("'wikipedia'", "'nope'")).await.unwrap(),
            json!([{"exists_": false}])
        );
        assert_eq!(
            sql(&format!("{GET_TABLE_NAMES} WHERE TABLE_SCHEMA = 'druid'")).await.unwrap(),
            json!([{"TABLE_NAME": "wikipedia"}])
        );
        assert_eq!(
            sql(GET_TABLE_NAMES).await.unwrap(),
            json!([
                {"TABLE_NAME": "COLUMNS"},
                {"TABLE_NAME": "SCHEMATA"},
                {"TABLE_NAME": "TABLES"},
                {"TABLE_NAME": "wikipedia"},
            ])
        );
        let columns = json!([
            {"COLUMN_NAME": "__time", "DATA_TYPE": "TIMESTAMP", "IS_NULLABLE": "NO", "COLUMN_DEFAULT": ""},
            {"COLUMN_NAME": "channel", "DATA_TYPE": "VARCHAR", "IS_NULLABLE": "YES", "COLUMN_DEFAULT": ""},
            {"COLUMN_NAME": "page", "DATA_TYPE": "VARCHAR", "IS_NULLABLE": "YES", "COLUMN_DEFAULT": ""},
            {"COLUMN_NAME": "added", "DATA_TYPE": "BIGINT", "IS_NULLABLE": "YES", "COLUMN_DEFAULT": ""},
            {"COLUMN_NAME": "count", "DATA_TYPE": "BIGINT", "IS_NULLABLE": "YES", "COLUMN_DEFAULT": ""},
            {"COLUMN_NAME": "delta", "DATA_TYPE": "DOUBLE", "IS_NULLABLE": "YES", "COLUMN_DEFAULT": ""},
        ]);
        assert_eq!(sql(GET_COLUMNS).await.unwrap(), columns);
        assert_eq!(sql(&format!("{GET_COLUMNS} AND TABLE_SCHEMA = 'druid'")).await.unwrap(), columns);
        let jdbc: Vec<_> = sql(GET_COLUMNS_JDBC)
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["JDBC_TYPE"].clone())
            .collect();
        assert_eq!(jdbc, [93, 12, 12, -5, -5, 8]);
        // pydruid's ping.
        assert_eq!(sql("SELECT 1").await.unwrap(), json!([{"EXPR$0": 1}]));
    }

    #[tokio::test]
    async fn information_schema_tables_in_full() {
        let rows = sql("SELECT * FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid'").await.unwrap();
        assert_eq!(
            rows,
            json!([{
                "TABLE_CATALOG": "druid", "TABLE_SCHEMA": "druid", "TABLE_NAME": "wikipedia",
                "TABLE_TYPE": "TABLE", "IS_JOINABLE": "NO", "IS_BROADCAST": "NO",
            }])
        );
        let rows = sql("SELECT TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES \
                        WHERE TABLE_SCHEMA = 'INFORMATION_SCHEMA' AND TABLE_NAME = 'COLUMNS'")
        .await
        .unwrap();
        assert_eq!(rows, json!([{"TABLE_NAME": "COLUMNS", "TABLE_TYPE": "SYSTEM_TABLE"}]));
        let rows =
            sql("SELECT * FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = 'druid'").await.unwrap();
        assert_eq!(
            rows,
            json!([{
                "CATALOG_NAME": "druid", "SCHEMA_NAME": "druid", "SCHEMA_OWNER": null,
                "DEFAULT_CHARACTER_SET_CATALOG": null, "DEFAULT_CHARACTER_SET_SCHEMA": null,
                "DEFAULT_CHARACTER_SET_NAME": null, "SQL_PATH": null,
            }])
        );
        // Druid's documented example.
        let rows = sql(r#"SELECT * FROM INFORMATION_SCHEMA.COLUMNS WHERE "TABLE_SCHEMA" = 'druid' AND "TABLE_NAME" = 'wikipedia'"#)
            .await
            .unwrap();
        assert_eq!(
            rows[0],
            json!({
                "TABLE_CATALOG": "druid", "TABLE_SCHEMA": "druid", "TABLE_NAME": "wikipedia",
                "COLUMN_NAME": "__time", "ORDINAL_POSITION": 1, "COLUMN_DEFAULT": "", "IS_NULLABLE": "NO",
                "DATA_TYPE": "TIMESTAMP", "CHARACTER_MAXIMUM_LENGTH": null, "CHARACTER_OCTET_LENGTH": null,
                "NUMERIC_PRECISION": null, "NUMERIC_PRECISION_RADIX": null, "NUMERIC_SCALE": null,
                "DATETIME_PRECISION": 3, "CHARACTER_SET_NAME": null, "COLLATION_NAME": null, "JDBC_TYPE": 93,
            })
        );
        assert_eq!(rows[1]["CHARACTER_SET_NAME"], "UTF-16LE");
        assert_eq!(rows[3]["NUMERIC_PRECISION"], 19);
        assert_eq!(rows[5]["ORDINAL_POSITION"], 6);
        // The metadata tables describe themselves too: 7 + 6 + 17 columns.
        let rows = sql("SELECT TABLE_NAME, COUNT(*) AS n FROM INFORMATION_SCHEMA.COLUMNS \
                        WHERE TABLE_SCHEMA = 'INFORMATION_SCHEMA' GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
        assert_eq!(
            rows,
            json!([{"TABLE_NAME": "COLUMNS", "n": 17}, {"TABLE_NAME": "SCHEMATA", "n": 7}, {"TABLE_NAME": "TABLES", "n": 6}])
        );
    }
}
