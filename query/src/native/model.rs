//! Druid's native query JSON, as Druid's documentation writes it. Unknown fields are ignored
//! (as Druid's own parser does); unknown type names are errors listing the known ones.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `dataSource`: a name, or `{"type":"table","name":...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DataSourceRef {
    /// A plain name.
    Name(String),
    /// A typed data source object.
    Typed(TypedDataSource),
}

/// The object form of `dataSource`.
#[derive(Debug, Clone, Deserialize)]
pub struct TypedDataSource {
    /// `table` is the only kind braid serves.
    #[serde(rename = "type")]
    pub kind: String,
    /// The table name.
    pub name: Option<String>,
}

/// A dimension filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Filter {
    /// `dimension` equals `value` (null matches missing values).
    Selector {
        dimension: String,
        value: Option<Value>,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// Druid 28's typed equality.
    #[serde(rename_all = "camelCase")]
    Equals { column: String, match_value: Value },
    /// Druid 28's null test.
    Null { column: String },
    /// `dimension` is one of `values`.
    In {
        dimension: String,
        values: Vec<Value>,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// A range, ordered lexicographically (default) or numerically.
    #[serde(rename_all = "camelCase")]
    Bound {
        dimension: String,
        lower: Option<Value>,
        upper: Option<Value>,
        #[serde(default, deserialize_with = "flag")]
        lower_strict: bool,
        #[serde(default, deserialize_with = "flag")]
        upper_strict: bool,
        ordering: Option<Value>,
        extraction_fn: Option<Value>,
    },
    /// A Java regular expression found anywhere in the value.
    Regex {
        dimension: String,
        pattern: String,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// SQL LIKE with `%` and `_`.
    Like {
        dimension: String,
        pattern: String,
        escape: Option<String>,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// Substring search.
    Search {
        dimension: String,
        query: SearchQuery,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// Time (or another long column) within intervals.
    Interval {
        dimension: String,
        intervals: Value,
        #[serde(rename = "extractionFn")]
        extraction_fn: Option<Value>,
    },
    /// All of `fields`.
    And { fields: Vec<Filter> },
    /// Any of `fields`.
    Or { fields: Vec<Filter> },
    /// Not `field`.
    Not { field: Box<Filter> },
    /// Matches every row.
    True {},
    /// Matches no row.
    False {},
}

/// The `query` of a search filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchQuery {
    /// Contains `value` (case-insensitive unless `caseSensitive`).
    #[serde(rename_all = "camelCase")]
    Contains {
        value: String,
        #[serde(default, deserialize_with = "flag")]
        case_sensitive: bool,
    },
    /// Contains `value`, ignoring case.
    InsensitiveContains { value: String },
    /// Contains every one of `values`.
    #[serde(rename_all = "camelCase")]
    Fragment {
        values: Vec<String>,
        #[serde(default, deserialize_with = "flag")]
        case_sensitive: bool,
    },
}

/// A query-time aggregator.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Aggregator {
    /// Counts rows (rollup rows, not events).
    #[serde(rename = "count")]
    Count { name: String },
    /// Sum as a long.
    #[serde(rename = "longSum")]
    LongSum {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Sum as a double.
    #[serde(rename = "doubleSum")]
    DoubleSum {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Sum as a float.
    #[serde(rename = "floatSum")]
    FloatSum {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Minimum as a long.
    #[serde(rename = "longMin")]
    LongMin {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Maximum as a long.
    #[serde(rename = "longMax")]
    LongMax {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Minimum as a double.
    #[serde(rename = "doubleMin")]
    DoubleMin {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Maximum as a double.
    #[serde(rename = "doubleMax")]
    DoubleMax {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Minimum as a float.
    #[serde(rename = "floatMin")]
    FloatMin {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Maximum as a float.
    #[serde(rename = "floatMax")]
    FloatMax {
        name: String,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// Another aggregator over the rows matching a filter.
    #[serde(rename = "filtered")]
    Filtered { filter: Filter, aggregator: Box<Aggregator>, name: Option<String> },
}

impl Aggregator {
    /// The output name.
    pub fn name(&self) -> &str {
        match self {
            Self::Count { name }
            | Self::LongSum { name, .. }
            | Self::DoubleSum { name, .. }
            | Self::FloatSum { name, .. }
            | Self::LongMin { name, .. }
            | Self::LongMax { name, .. }
            | Self::DoubleMin { name, .. }
            | Self::DoubleMax { name, .. }
            | Self::FloatMin { name, .. }
            | Self::FloatMax { name, .. } => name,
            Self::Filtered { name, aggregator, .. } => name.as_deref().unwrap_or_else(|| aggregator.name()),
        }
    }
}

/// A post-aggregator, computed from aggregated values.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum PostAggregator {
    /// `fields` combined left to right with `fn`.
    #[serde(rename = "arithmetic")]
    Arithmetic {
        name: String,
        #[serde(rename = "fn")]
        function: String,
        fields: Vec<PostAggregator>,
    },
    /// An aggregator's (or earlier post-aggregator's) value.
    #[serde(rename = "fieldAccess", alias = "finalizingFieldAccess")]
    FieldAccess {
        name: Option<String>,
        #[serde(rename = "fieldName")]
        field_name: String,
    },
    /// A number.
    #[serde(rename = "constant")]
    Constant { name: Option<String>, value: f64 },
    /// The greatest of `fields`, as a double.
    #[serde(rename = "doubleGreatest")]
    DoubleGreatest { name: String, fields: Vec<PostAggregator> },
    /// The least of `fields`, as a double.
    #[serde(rename = "doubleLeast")]
    DoubleLeast { name: String, fields: Vec<PostAggregator> },
    /// The greatest of `fields`, as a long.
    #[serde(rename = "longGreatest")]
    LongGreatest { name: String, fields: Vec<PostAggregator> },
    /// The least of `fields`, as a long.
    #[serde(rename = "longLeast")]
    LongLeast { name: String, fields: Vec<PostAggregator> },
}

impl PostAggregator {
    /// The output name, if it has one (nested field accesses need not).
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Arithmetic { name, .. }
            | Self::DoubleGreatest { name, .. }
            | Self::DoubleLeast { name, .. }
            | Self::LongGreatest { name, .. }
            | Self::LongLeast { name, .. } => Some(name),
            Self::FieldAccess { name, .. } | Self::Constant { name, .. } => name.as_deref(),
        }
    }
}

/// A grouping dimension: a column name, or `{"type":"default","dimension","outputName"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DimensionRef {
    /// A column name, output under the same name.
    Name(String),
    /// The object form.
    Spec(DimensionObject),
}

/// The object form of a grouping dimension.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionObject {
    /// `default` (extraction dimensions are not supported).
    #[serde(rename = "type", default = "default_dimension_type")]
    pub kind: String,
    /// The column.
    pub dimension: String,
    /// The output name (defaults to the column).
    pub output_name: Option<String>,
    /// Output type: STRING (default), LONG, FLOAT, DOUBLE.
    pub output_type: Option<String>,
}

fn default_dimension_type() -> String {
    "default".into()
}

impl DimensionRef {
    /// The column read.
    pub fn column(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Spec(spec) => &spec.dimension,
        }
    }

    /// Whether results show the column's values as they are (no extraction, no output type
    /// conversion), so rows may be grouped by the values' codes.
    pub fn is_plain(&self) -> bool {
        match self {
            Self::Name(_) => true,
            Self::Spec(spec) => {
                spec.kind == "default"
                    && spec.output_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("STRING"))
            }
        }
    }

    /// The name in results.
    pub fn output_name(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Spec(spec) => spec.output_name.as_deref().unwrap_or(&spec.dimension),
        }
    }
}

/// topN's `metric`: a name, or an ordering spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TopNMetric {
    /// Highest values of this aggregator or post-aggregator first.
    Name(String),
    /// An ordering object.
    Spec(TopNMetricSpec),
}

/// The object forms of topN's `metric`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TopNMetricSpec {
    /// Highest values of `metric` first.
    Numeric { metric: String },
    /// Dimension values in `ordering`, after `previousStop`.
    #[serde(rename_all = "camelCase")]
    Dimension { ordering: Option<String>, previous_stop: Option<String> },
    /// Lexicographic dimension order (legacy name).
    #[serde(rename_all = "camelCase")]
    Lexicographic { previous_stop: Option<String> },
    /// Alphanumeric dimension order (legacy name).
    #[serde(rename_all = "camelCase")]
    Alphanumeric { previous_stop: Option<String> },
    /// The reverse of another ordering.
    Inverted { metric: Box<TopNMetric> },
}

/// A groupBy `having` clause.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Having {
    /// `aggregation` > `value`.
    GreaterThan { aggregation: String, value: f64 },
    /// `aggregation` < `value`.
    LessThan { aggregation: String, value: f64 },
    /// `aggregation` = `value`.
    EqualTo { aggregation: String, value: f64 },
    /// Output dimension equals value.
    DimSelector { dimension: String, value: Option<Value> },
    /// A dimension filter over the output row.
    Filter { filter: Filter },
    /// All of the specs.
    #[serde(rename_all = "camelCase")]
    And { having_specs: Vec<Having> },
    /// Any of the specs.
    #[serde(rename_all = "camelCase")]
    Or { having_specs: Vec<Having> },
    /// Not the spec.
    #[serde(rename_all = "camelCase")]
    Not { having_spec: Box<Having> },
    /// Every row.
    Always {},
    /// No row.
    Never {},
}

/// groupBy's `limitSpec`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LimitSpec {
    /// Rows to return at most.
    pub limit: Option<usize>,
    /// Rows to skip first.
    pub offset: Option<usize>,
    /// Ordering columns.
    #[serde(default)]
    pub columns: Vec<OrderByColumn>,
}

/// One ordering column: a name (ascending) or an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OrderByColumn {
    /// Ascending by this output column.
    Name(String),
    /// The object form.
    Spec(OrderByObject),
}

/// The object form of an ordering column.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderByObject {
    /// The output column.
    pub dimension: String,
    /// `ascending` (default) or `descending`.
    pub direction: Option<String>,
    /// `lexicographic` (default), `numeric`, `alphanumeric`, `strlen`.
    pub dimension_order: Option<Value>,
}

/// The fields shared by aggregating queries.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregating {
    /// Aggregators.
    #[serde(default)]
    pub aggregations: Vec<Aggregator>,
    /// Post-aggregators, in dependency order.
    #[serde(default)]
    pub post_aggregations: Vec<PostAggregator>,
}

/// Query `context`.
pub type Context = Map<String, Value>;

/// A boolean as Druid's Jackson reads one: `true`/`false`, or the strings `"true"`/`"false"`
/// in any case (pydruid sends its search filter's `caseSensitive` as a string).
pub fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Flag::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Flag::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        Flag::Text(t) => Err(serde::de::Error::custom(format!("\"{t}\" is not a boolean (true or false)"))),
    }
}
