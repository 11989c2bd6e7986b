//! A training table in memory: named feature columns (numeric or categorical, with
//! missing values) and a 0/1 label (1 = bad). Plain data: the batch crate builds it
//! from the buyer features or from any Parquet/CSV table a data team brings.

/// Why a table cannot be trained or scored on.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: no label column `{column}` (columns: {available})")]
    NoLabel {
        file: String,
        column: String,
        available: String,
    },
    #[error("{file}, row {row}: label `{column}` is {value}; it must be 0 or 1 (1 = bad)")]
    BadLabel {
        file: String,
        row: u64,
        column: String,
        value: String,
    },
    #[error("{file}: label `{column}` has only {what}; training needs both goods (0) and bads (1)")]
    OneClass {
        file: String,
        column: String,
        what: &'static str,
    },
    #[error("{file}: no feature columns left to train on")]
    NoFeatures { file: String },
    #[error("{file}: the model needs column `{column}`, which the table does not have")]
    MissingFeature { file: String, column: String },
}

/// One feature column.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureData {
    /// Numbers; NaN = missing.
    Num(Vec<f64>),
    /// Labels; `None` = missing.
    Cat(Vec<Option<String>>),
}

impl FeatureData {
    pub fn len(&self) -> usize {
        match self {
            FeatureData::Num(v) => v.len(),
            FeatureData::Cat(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of row `i`, for scoring.
    pub fn value(&self, i: usize) -> fastrefund_core::scoring::Value<'_> {
        use fastrefund_core::scoring::Value;
        match self {
            FeatureData::Num(v) => Value::Num(v[i]),
            FeatureData::Cat(v) => match &v[i] {
                Some(s) => Value::Cat(s),
                None => Value::Missing,
            },
        }
    }

    fn take(&self, idx: &[usize]) -> FeatureData {
        match self {
            FeatureData::Num(v) => FeatureData::Num(idx.iter().map(|i| v[*i]).collect()),
            FeatureData::Cat(v) => FeatureData::Cat(idx.iter().map(|i| v[*i].clone()).collect()),
        }
    }
}

/// Feature columns and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub names: Vec<String>,
    pub columns: Vec<FeatureData>,
    /// 1 = bad, 0 = good.
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn bads(&self) -> usize {
        self.labels.iter().filter(|l| **l == 1).count()
    }

    /// The rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> Dataset {
        Dataset {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.take(idx)).collect(),
            labels: idx.iter().map(|i| self.labels[*i]).collect(),
        }
    }
}
