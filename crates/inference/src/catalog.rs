//! What a server serves: entries like `churn@Production`, each holding the version loaded
//! for it. A swap replaces one entry's `Arc` under a short write lock; a request takes
//! its `Arc` once and scores with it to the end, so no request sees two versions or fails
//! while another version loads.

use std::{
    str::FromStr,
    sync::{Arc, RwLock},
};

use crate::model::{InferError, ServedModel};

/// How an entry picks its version: the holder of a registry stage, or of an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `Production` or `Staging`.
    Stage(String),
    /// A named pointer such as `champion`.
    Alias(String),
}

/// One served entry: a model and how its version is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The model's name.
    pub model: String,
    /// Which of its versions.
    pub selector: Selector,
}

impl Entry {
    /// The stage or alias name, as requests and samples report it.
    pub fn label(&self) -> &str {
        match &self.selector {
            Selector::Stage(s) | Selector::Alias(s) => s,
        }
    }

    /// The registry URI that resolves the entry: `models:/churn/Production`,
    /// `models:/churn@champion`.
    pub fn uri(&self) -> String {
        match &self.selector {
            Selector::Stage(s) => format!("models:/{}/{s}", self.model),
            Selector::Alias(a) => format!("models:/{}@{a}", self.model),
        }
    }

    /// Whether the entry follows the Production stage.
    pub fn is_production(&self) -> bool {
        self.selector == Selector::Stage("Production".into())
    }
}

impl FromStr for Entry {
    type Err = String;

    /// `MODEL@STAGE` (`Production`, `Staging`, any case) or `MODEL@ALIAS`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let Some((model, which)) = s.split_once('@') else {
            return Err(format!(
                "{s:?} is not MODEL@STAGE or MODEL@ALIAS (e.g. churn@Production)"
            ));
        };
        let valid = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !valid(model) || !valid(which) {
            return Err(format!(
                "{s:?}: model and stage or alias are letters, digits, - and _"
            ));
        }
        let selector = match which.to_ascii_lowercase().as_str() {
            "production" => Selector::Stage("Production".into()),
            "staging" => Selector::Stage("Staging".into()),
            _ => Selector::Alias(which.into()),
        };
        Ok(Entry {
            model: model.into(),
            selector,
        })
    }
}

/// The entries a server serves and the version loaded for each.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<Entry>,
    slots: Vec<RwLock<Option<Arc<ServedModel>>>>,
}

impl Catalog {
    /// `entries`, none loaded yet.
    pub fn new(entries: Vec<Entry>) -> Self {
        let slots = entries.iter().map(|_| RwLock::new(None)).collect();
        Catalog { entries, slots }
    }

    /// One model, loaded: what the gate and the promoter host on loopback.
    pub fn single(model: ServedModel) -> Self {
        let entry = Entry {
            model: model.name.clone(),
            selector: Selector::Alias(model.served_as.clone()),
        };
        let catalog = Catalog::new(vec![entry]);
        catalog.set(0, Arc::new(model));
        catalog
    }

    /// The served entries, in configured order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The version loaded for entry `i`.
    pub fn current(&self, i: usize) -> Option<Arc<ServedModel>> {
        let slot = self.slots.get(i)?;
        slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves `model` for entry `i` from now on; returns the version it replaced.
    pub fn set(&self, i: usize, model: Arc<ServedModel>) -> Option<Arc<ServedModel>> {
        let slot = self.slots.get(i)?;
        slot.write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(model)
    }

    /// Stops serving entry `i` (its stage or alias points nowhere now).
    pub fn clear(&self, i: usize) -> Option<Arc<ServedModel>> {
        let slot = self.slots.get(i)?;
        slot.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether every entry has a version loaded.
    pub fn ready(&self) -> bool {
        (0..self.slots.len()).all(|i| self.current(i).is_some())
    }

    /// The versions of `name` loaded, ascending, without repeats.
    pub fn versions(&self, name: &str) -> Vec<u32> {
        let mut v: Vec<u32> = (0..self.entries.len())
            .filter(|&i| self.entries[i].model == name)
            .filter_map(|i| self.current(i).map(|m| m.version))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// What `/v2/models/{name}[/versions/{version}]` reaches: without a version, the
    /// first entry named `name`; with one, whichever entry holds that version.
    pub fn find(&self, name: &str, version: Option<&str>) -> Result<Arc<ServedModel>, InferError> {
        let mut named = (0..self.entries.len()).filter(|&i| self.entries[i].model == name);
        let Some(first) = named.next() else {
            let mut serves: Vec<&str> = self.entries.iter().map(|e| e.model.as_str()).collect();
            serves.dedup();
            return Err(InferError::UnknownModel {
                name: name.into(),
                serves: if serves.is_empty() {
                    "nothing".into()
                } else {
                    serves.join(", ")
                },
            });
        };
        let Some(version) = version else {
            return self
                .current(first)
                .ok_or_else(|| InferError::NotReady(name.into()));
        };
        let unknown = || InferError::UnknownVersion {
            name: name.into(),
            version: version.into(),
            loaded: {
                let v = self.versions(name);
                if v.is_empty() {
                    "none".into()
                } else {
                    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                }
            },
        };
        let wanted: u32 = version.parse().map_err(|_| unknown())?;
        std::iter::once(first)
            .chain(named)
            .filter_map(|i| self.current(i))
            .find(|m| m.version == wanted)
            .ok_or_else(unknown)
    }
}
