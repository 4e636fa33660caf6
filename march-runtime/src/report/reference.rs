//! A reference to compare march's ordering with: one value per variant
//! (e.g. the original's single-seed final losses), read from a file.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// Values by variant name, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The file's name, for the report.
    pub name: String,
    pub values: BTreeMap<String, f64>,
}

impl Reference {
    /// Read `path`: a JSON object `{"Variant": value, …}`, or text with one
    /// `Variant value` per line (`#` starts a comment).
    pub fn read(path: &Path) -> Result<Reference> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the reference {}", path.display()))?;
        let values = Self::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(Reference {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            values,
        })
    }

    /// Parse the text of a reference file.
    pub fn parse(text: &str) -> Result<BTreeMap<String, f64>> {
        let mut values = BTreeMap::new();
        if text.trim_start().starts_with('{') {
            let map: BTreeMap<String, f64> = serde_json::from_str(text)
                .map_err(|e| anyhow!("not a JSON object of numbers: {e}"))?;
            values = map;
        } else {
            for (i, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next())
                else {
                    bail!("line {}: write `Variant value`, not `{line}`", i + 1);
                };
                let v: f64 = value
                    .parse()
                    .map_err(|_| anyhow!("line {}: `{value}` is not a number", i + 1))?;
                if values.insert(name.to_string(), v).is_some() {
                    bail!("line {}: {name} is given twice", i + 1);
                }
            }
        }
        if values.is_empty() {
            bail!("no values in it");
        }
        if let Some((k, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
            bail!("{k}: {v} is not a finite number");
        }
        Ok(values)
    }

    /// The value for `variant` (case-insensitive).
    pub fn get(&self, variant: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(variant))
            .map(|(_, v)| *v)
    }
}
