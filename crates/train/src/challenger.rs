//! The challenger: a bagged ensemble of linfa decision trees on the same buyer features
//! as the scorecard, compared with it on the same out-of-time test, and run by the
//! service in shadow.
//!
//! linfa's trees predict a class, and on a rare label (a few percent bad) a plain
//! tree is pruned back to "good" everywhere; so each tree is fitted on a seeded
//! bootstrap sample with the bads weighted up to balance the classes, and after
//! fitting every leaf gets the smoothed *unweighted* bad rate of the bootstrap rows
//! that reach it. The challenger's probability of bad is the mean over the trees; its
//! score is `round(1000 × (1 − p))` and its stars come from cut-offs placed at the
//! champion's star shares on the training rows. Missing values become −1 (every buyer
//! feature is ≥ 0), so a tree can split them off.
//!
//! The fitted ensemble leaves linfa as our own JSON artifact ([`Challenger`]), like
//! the scorecard.

use super::TrainError;
use super::dataset::{Dataset, FeatureData};
use fastrefund_core::domain::Star;
use fastrefund_core::scoring::StarCutoffs;
use linfa::prelude::*;
use linfa_trees::{DecisionTree, SplitQuality};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of the challenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengerParams {
    /// Trees (default 25).
    pub trees: usize,
    /// Depth of each tree (default 6).
    pub max_depth: usize,
    /// Least (weighted) rows in a leaf (default 20).
    pub min_leaf: f32,
    /// Seed of the bootstrap samples (default 7).
    pub seed: u64,
    /// Rows drawn (with replacement) for each tree, at most (default 200,000; fewer
    /// when the training set is smaller): past that a tree gains little and costs time.
    #[serde(default = "default_sample")]
    pub max_sample: usize,
}

fn default_sample() -> usize {
    200_000
}

impl Default for ChallengerParams {
    fn default() -> Self {
        ChallengerParams {
            trees: 25,
            max_depth: 6,
            min_leaf: 20.0,
            seed: 7,
            max_sample: default_sample(),
        }
    }
}

/// A node of an exported tree: a split (`value < threshold` goes left) or a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
    Leaf {
        p_bad: f64,
    },
}

/// The challenger artifact (`challenger.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenger {
    pub kind: String,
    pub model_version: String,
    /// Feature names, in the order the trees index them.
    pub features: Vec<String>,
    pub params: ChallengerParams,
    /// Each tree's nodes; node 0 is the root.
    pub trees: Vec<Vec<Node>>,
    /// Minimum challenger score for 2★ … 5★.
    pub star_min_score: [i32; 4],
}

const MISSING: f64 = -1.0;

fn numeric_matrix(ds: &Dataset) -> Result<Array2<f64>, TrainError> {
    let mut x = Array2::<f64>::zeros((ds.rows(), ds.columns.len()));
    for (j, c) in ds.columns.iter().enumerate() {
        match c {
            FeatureData::Num(v) => {
                for (i, val) in v.iter().enumerate() {
                    x[[i, j]] = if val.is_nan() { MISSING } else { *val };
                }
            }
            FeatureData::Cat(_) => {
                return Err(TrainError::Data(format!(
                    "the challenger takes numeric features only; `{}` is categorical",
                    ds.names[j]
                )));
            }
        }
    }
    Ok(x)
}

/// Exports a fitted tree, with each leaf's bad rate among `rows` (x, y) reaching it.
fn export(tree: &DecisionTree<f64, bool>, x: &Array2<f64>, y: &[u8], rows: &[usize]) -> Vec<Node> {
    // Flatten the tree (pre-order), remembering each node's index.
    fn walk(node: &linfa_trees::TreeNode<f64, bool>, out: &mut Vec<Node>) -> usize {
        let me = out.len();
        if node.is_leaf() {
            out.push(Node::Leaf { p_bad: 0.0 });
            return me;
        }
        let (feature, threshold, _) = node.split();
        out.push(Node::Split {
            feature,
            threshold,
            left: 0,
            right: 0,
        });
        let children = node.children();
        let l = children[0].as_ref().map(|c| walk(c, out));
        let r = children[1].as_ref().map(|c| walk(c, out));
        match (l, r) {
            (Some(l), Some(r)) => {
                out[me] = Node::Split {
                    feature,
                    threshold,
                    left: l,
                    right: r,
                }
            }
            _ => out[me] = Node::Leaf { p_bad: 0.0 },
        }
        me
    }
    let mut nodes = Vec::new();
    walk(tree.root_node(), &mut nodes);
    let mut count = vec![0u64; nodes.len()];
    let mut bads = vec![0u64; nodes.len()];
    for &i in rows {
        let leaf = route(&nodes, |j| x[[i, j]]);
        count[leaf] += 1;
        bads[leaf] += u64::from(y[i]);
    }
    let base = y.iter().map(|v| f64::from(*v)).sum::<f64>() / y.len().max(1) as f64;
    for (k, n) in nodes.iter_mut().enumerate() {
        if let Node::Leaf { p_bad } = n {
            // Shrink towards the base rate with the weight of 10 rows.
            *p_bad = (bads[k] as f64 + 10.0 * base) / (count[k] as f64 + 10.0);
        }
    }
    nodes
}

fn route(nodes: &[Node], value: impl Fn(usize) -> f64) -> usize {
    let mut k = 0;
    loop {
        match &nodes[k] {
            Node::Leaf { .. } => return k,
            Node::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                k = if value(*feature) < *threshold {
                    *left
                } else {
                    *right
                }
            }
        }
    }
}

impl Challenger {
    /// P(bad) of one buyer; `values` in [`Challenger::features`] order, NaN = missing.
    pub fn probability_bad(&self, values: &[f64]) -> f64 {
        let v = |j: usize| {
            let x = values.get(j).copied().unwrap_or(f64::NAN);
            if x.is_nan() { MISSING } else { x }
        };
        let total: f64 = self
            .trees
            .iter()
            .map(|t| match &t[route(t, v)] {
                Node::Leaf { p_bad } => *p_bad,
                Node::Split { .. } => 0.0,
            })
            .sum();
        total / self.trees.len().max(1) as f64
    }

    /// Score: 1000 × (1 − P(bad)), rounded; higher is better.
    pub fn score(&self, values: &[f64]) -> i32 {
        (1000.0 * (1.0 - self.probability_bad(values))).round() as i32
    }

    /// The challenger's star cut-offs, in the scorecard's form.
    pub fn cutoffs(&self) -> StarCutoffs {
        StarCutoffs {
            min_score: self.star_min_score,
        }
    }

    /// Star of a challenger score.
    pub fn star_of(&self, score: i32) -> Star {
        self.cutoffs().star_of(score)
    }

    /// Reads `challenger.json`.
    pub fn load(path: &std::path::Path) -> Result<Challenger, TrainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Data(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            TrainError::Data(format!("{} is not a challenger model: {e}", path.display()))
        })
    }
}

/// Fits the challenger on `train`, placing star cut-offs at the population shares the
/// champion's stars have on the same rows (`champion_star_shares`, 1★ first).
/// Grows one tree on the rows `rows` of `x` (bads weighted up to balance the classes).
fn grow(
    x: &Array2<f64>,
    y: &[u8],
    rows: &[usize],
    bad_weight: f32,
    params: &ChallengerParams,
) -> Result<Vec<Node>, TrainError> {
    let mut xb = Array2::<f64>::zeros((rows.len(), x.ncols()));
    for (r, &i) in rows.iter().enumerate() {
        xb.row_mut(r).assign(&x.row(i));
    }
    let yb: Array1<bool> = rows.iter().map(|&i| y[i] == 1).collect();
    let wb: Array1<f32> = rows
        .iter()
        .map(|&i| if y[i] == 1 { bad_weight } else { 1.0 })
        .collect();
    let ds = linfa::Dataset::new(xb, yb).with_weights(wb);
    let tree = DecisionTree::params()
        .split_quality(SplitQuality::Gini)
        .max_depth(Some(params.max_depth))
        .min_weight_leaf(params.min_leaf)
        .min_weight_split(2.0 * params.min_leaf)
        .fit(&ds)
        .map_err(|e| TrainError::Fit(format!("challenger tree: {e}")))?;
    Ok(export(&tree, x, y, rows))
}

pub fn fit(
    train: &Dataset,
    params: &ChallengerParams,
    champion_star_shares: [f64; 5],
    model_version: String,
) -> Result<Challenger, TrainError> {
    let x = numeric_matrix(train)?;
    let y = &train.labels;
    let n = train.rows();
    let bads = y.iter().filter(|v| **v == 1).count().max(1);
    let bad_weight = ((n - bads) as f32 / bads as f32).max(1.0);
    // The samples are drawn in order from one seeded generator, then the trees are
    // grown in parallel: the same seed gives the same trees on any number of cores.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.seed);
    let m = n.min(params.max_sample.max(1));
    let samples: Vec<Vec<usize>> = (0..params.trees)
        .map(|_| (0..m).map(|_| rng.random_range(0..n)).collect())
        .collect();
    let trees = samples
        .into_par_iter()
        .map(|rows| grow(&x, y, &rows, bad_weight, params))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ch = Challenger {
        kind: "bagged_trees".into(),
        model_version,
        features: train.names.clone(),
        params: params.clone(),
        trees,
        star_min_score: [0, 1, 2, 3],
    };
    // Cut-offs at the champion's cumulative star shares of these rows.
    let mut scores: Vec<i32> = (0..n)
        .map(|i| {
            ch.score(
                &x.row(i)
                    .iter()
                    .map(|v| if *v == MISSING { f64::NAN } else { *v })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    scores.sort_unstable();
    let mut cum = 0.0;
    let mut cuts = [0i32; 4];
    for (k, share) in champion_star_shares.iter().take(4).enumerate() {
        cum += share;
        cuts[k] = scores[((cum * n as f64) as usize).min(n - 1)];
        if k > 0 && cuts[k] <= cuts[k - 1] {
            cuts[k] = cuts[k - 1] + 1;
        }
    }
    ch.star_min_score = cuts;
    Ok(ch)
}

/// Challenger scores of every row of a dataset whose columns follow `ch.features`.
pub fn scores(ch: &Challenger, ds: &Dataset) -> Result<Vec<i32>, TrainError> {
    let cols: Vec<&Vec<f64>> = ch
        .features
        .iter()
        .map(|n| {
            let j = ds.names.iter().position(|m| m == n).ok_or_else(|| {
                TrainError::Data(format!(
                    "the data has no feature `{n}` the challenger needs"
                ))
            })?;
            match &ds.columns[j] {
                FeatureData::Num(v) => Ok(v),
                FeatureData::Cat(_) => Err(TrainError::Data(format!("`{n}` is not numeric"))),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((0..ds.rows())
        .map(|i| ch.score(&cols.iter().map(|c| c[i]).collect::<Vec<_>>()))
        .collect())
}
