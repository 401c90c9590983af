//! Druid's `INFORMATION_SCHEMA`: `SCHEMATA`, `TABLES` and `COLUMNS`, computed on demand from the
//! catalog's schemas each time a query plans against them, so a dataSource that appears or gains a
//! column shows up in the next query. Columns, order and values follow Druid's
//! `InformationSchema` (catalog "druid", `TABLE_TYPE` "TABLE" or "SYSTEM_TABLE", `IS_NULLABLE`
//! "YES"/"NO", Druid's SQL type names and the `JDBC_TYPE` extension pydruid's dialect reads).

use std::sync::{Arc, Weak};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::TableType;

use super::types::{datetime_precision, jdbc_type, numeric_precision, sql_type_name};

/// The schema's name, exactly as Druid spells it (identifiers are case-sensitive).
pub const INFORMATION_SCHEMA: &str = "INFORMATION_SCHEMA";
/// The catalog name every row reports, as Druid does.
const CATALOG_NAME: &str = "druid";
const SCHEMATA: &str = "SCHEMATA";
const TABLES: &str = "TABLES";
const COLUMNS: &str = "COLUMNS";
const TABLE_NAMES: [&str; 3] = [COLUMNS, SCHEMATA, TABLES];
/// Druid's (Calcite's) character set and collation for VARCHAR columns.
const CHARACTER_SET: &str = "UTF-16LE";
const COLLATION: &str = "UTF-16LE$en_US$primary";

/// `INFORMATION_SCHEMA` over the catalog it is registered in. It holds the catalog weakly: the
/// catalog owns this schema, and a strong reference back would leak both.
#[derive(Debug)]
pub struct InformationSchemaProvider {
    catalog: Weak<dyn CatalogProvider>,
}

impl InformationSchemaProvider {
    /// A provider describing `catalog`, including itself once registered in it.
    pub fn new(catalog: Weak<dyn CatalogProvider>) -> Self {
        Self { catalog }
    }

    fn catalog(&self) -> Result<Arc<dyn CatalogProvider>> {
        self.catalog
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("INFORMATION_SCHEMA outlived its catalog".into()))
    }

    /// Every (schema, table) of the catalog, schemas and tables sorted by name, with the table's
    /// columns and `TABLE_TYPE`.
    async fn tables(&self) -> Result<Vec<TableInfo>> {
        let catalog = self.catalog()?;
        let mut schema_names = catalog.schema_names();
        schema_names.sort();
        let mut tables = Vec::new();
        for schema_name in schema_names {
            let Some(schema) = catalog.schema(&schema_name) else { continue };
            let mut table_names = schema.table_names();
            table_names.sort();
            // This schema's own tables are described without building them, which would recurse.
            let own = schema.downcast_ref::<InformationSchemaProvider>().is_some();
            for table_name in table_names {
                let (columns, table_type) = if own {
                    let Some(columns) = own_table_schema(&table_name) else { continue };
                    (columns, "SYSTEM_TABLE")
                } else {
                    // A table can vanish between listing and loading; it is then simply not listed.
                    let Some(table) = schema.table(&table_name).await? else { continue };
                    (table.schema(), table_type(&schema_name, &table))
                };
                tables.push(TableInfo { schema: schema_name.clone(), name: table_name, columns, table_type });
            }
        }
        Ok(tables)
    }

    async fn schemata(&self) -> Result<RecordBatch> {
        let mut names = self.catalog()?.schema_names();
        names.sort();
        let n = names.len();
        let nulls = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>; n])) };
        RecordBatch::try_new(
            schemata_schema(),
            vec![
                Arc::new(StringArray::from(vec![CATALOG_NAME; n])),
                Arc::new(StringArray::from(names)),
                nulls(),
                nulls(),
                nulls(),
                nulls(),
                nulls(),
            ],
        )
        .map_err(Into::into)
    }

    async fn tables_table(&self) -> Result<RecordBatch> {
        let tables = self.tables().await?;
        let n = tables.len();
        RecordBatch::try_new(
            tables_schema(),
            vec![
                Arc::new(StringArray::from(vec![CATALOG_NAME; n])),
                Arc::new(StringArray::from_iter_values(tables.iter().map(|t| &t.schema))),
                Arc::new(StringArray::from_iter_values(tables.iter().map(|t| &t.name))),
                Arc::new(StringArray::from_iter_values(tables.iter().map(|t| t.table_type))),
                // Neither lookups nor broadcast tables exist in braid.
                Arc::new(StringArray::from(vec!["NO"; n])),
                Arc::new(StringArray::from(vec!["NO"; n])),
            ],
        )
        .map_err(Into::into)
    }

    async fn columns(&self) -> Result<RecordBatch> {
        let mut rows = ColumnRows::default();
        for table in self.tables().await? {
            for (i, field) in table.columns.fields().iter().enumerate() {
                rows.push(&table.schema, &table.name, i, field);
            }
        }
        rows.finish()
    }
}

/// What `TABLES` and `COLUMNS` say about one table.
struct TableInfo {
    schema: String,
    name: String,
    columns: SchemaRef,
    table_type: &'static str,
}

/// The columns of this schema's own table `name`.
fn own_table_schema(name: &str) -> Option<SchemaRef> {
    match name {
        SCHEMATA => Some(schemata_schema()),
        TABLES => Some(tables_schema()),
        COLUMNS => Some(columns_schema()),
        _ => None,
    }
}

#[async_trait]
impl SchemaProvider for InformationSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        TABLE_NAMES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let batch = match name {
            SCHEMATA => self.schemata().await?,
            TABLES => self.tables_table().await?,
            COLUMNS => self.columns().await?,
            _ => return Ok(None),
        };
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLE_NAMES.contains(&name)
    }
}

/// Druid's `TABLE_TYPE`: its own metadata tables are SYSTEM_TABLE, dataSources TABLE.
fn table_type(schema: &str, table: &Arc<dyn TableProvider>) -> &'static str {
    if schema == INFORMATION_SCHEMA || schema == "sys" {
        return "SYSTEM_TABLE";
    }
    match table.table_type() {
        TableType::View => "VIEW",
        TableType::Base | TableType::Temporary => "TABLE",
    }
}

fn varchar(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn bigint(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

fn schemata_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        varchar("CATALOG_NAME", false),
        varchar("SCHEMA_NAME", false),
        varchar("SCHEMA_OWNER", true),
        varchar("DEFAULT_CHARACTER_SET_CATALOG", true),
        varchar("DEFAULT_CHARACTER_SET_SCHEMA", true),
        varchar("DEFAULT_CHARACTER_SET_NAME", true),
        varchar("SQL_PATH", true),
    ]))
}

fn tables_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        varchar("TABLE_CATALOG", false),
        varchar("TABLE_SCHEMA", false),
        varchar("TABLE_NAME", false),
        varchar("TABLE_TYPE", false),
        varchar("IS_JOINABLE", false),
        varchar("IS_BROADCAST", false),
    ]))
}

fn columns_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        varchar("TABLE_CATALOG", false),
        varchar("TABLE_SCHEMA", false),
        varchar("TABLE_NAME", false),
        varchar("COLUMN_NAME", false),
        bigint("ORDINAL_POSITION", false),
        varchar("COLUMN_DEFAULT", true),
        varchar("IS_NULLABLE", false),
        varchar("DATA_TYPE", false),
        bigint("CHARACTER_MAXIMUM_LENGTH", true),
        bigint("CHARACTER_OCTET_LENGTH", true),
        bigint("NUMERIC_PRECISION", true),
        bigint("NUMERIC_PRECISION_RADIX", true),
        bigint("NUMERIC_SCALE", true),
        bigint("DATETIME_PRECISION", true),
        varchar("CHARACTER_SET_NAME", true),
        varchar("COLLATION_NAME", true),
        bigint("JDBC_TYPE", false),
    ]))
}

/// `COLUMNS` built column by column.
#[derive(Default)]
struct ColumnRows {
    schema: Vec<String>,
    table: Vec<String>,
    column: Vec<String>,
    ordinal: Vec<i64>,
    nullable: Vec<&'static str>,
    data_type: Vec<&'static str>,
    precision: Vec<Option<i64>>,
    radix: Vec<Option<i64>>,
    scale: Vec<Option<i64>>,
    datetime_precision: Vec<Option<i64>>,
    charset: Vec<Option<&'static str>>,
    collation: Vec<Option<&'static str>>,
    jdbc_type: Vec<i64>,
}

impl ColumnRows {
    fn push(&mut self, schema: &str, table: &str, index: usize, field: &Field) {
        let data_type = field.data_type();
        let numeric = numeric_precision(data_type);
        let is_varchar = sql_type_name(data_type) == "VARCHAR";
        self.schema.push(schema.to_string());
        self.table.push(table.to_string());
        self.column.push(field.name().clone());
        // 1-based, as the SQL standard (and JDBC's getColumns) number columns.
        self.ordinal.push(i64::try_from(index).map_or(i64::MAX, |i| i + 1));
        self.nullable.push(if field.is_nullable() { "YES" } else { "NO" });
        self.data_type.push(sql_type_name(data_type));
        self.precision.push(numeric.map(|(p, _, _)| p));
        self.radix.push(numeric.map(|(_, r, _)| r));
        self.scale.push(numeric.and_then(|(_, _, s)| s));
        self.datetime_precision.push(datetime_precision(data_type));
        self.charset.push(is_varchar.then_some(CHARACTER_SET));
        self.collation.push(is_varchar.then_some(COLLATION));
        self.jdbc_type.push(jdbc_type(data_type));
    }

    fn finish(self) -> Result<RecordBatch> {
        let n = self.column.len();
        let null_longs = || -> ArrayRef { Arc::new(Int64Array::from(vec![None; n])) };
        RecordBatch::try_new(
            columns_schema(),
            vec![
                Arc::new(StringArray::from(vec![CATALOG_NAME; n])),
                Arc::new(StringArray::from(self.schema)),
                Arc::new(StringArray::from(self.table)),
                Arc::new(StringArray::from(self.column)),
                Arc::new(Int64Array::from(self.ordinal)),
                // Druid answers an empty string: columns have no defaults.
                Arc::new(StringArray::from(vec![""; n])),
                Arc::new(StringArray::from(self.nullable)),
                Arc::new(StringArray::from(self.data_type)),
                null_longs(),
                null_longs(),
                Arc::new(Int64Array::from(self.precision)),
                Arc::new(Int64Array::from(self.radix)),
                Arc::new(Int64Array::from(self.scale)),
                Arc::new(Int64Array::from(self.datetime_precision)),
                Arc::new(StringArray::from(self.charset)),
                Arc::new(StringArray::from(self.collation)),
                Arc::new(Int64Array::from(self.jdbc_type)),
            ],
        )
        .map_err(Into::into)
    }
}
