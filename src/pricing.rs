//! Computed cost: a price table per model and the one rule that turns a
//! request's tokens into USD.
//!
//! Claude Code sends its own cost estimate with every API request; Codex
//! CLI, Gemini CLI and OpenCode send none (nor does Claude Code through
//! some gateways). For those, the cost is computed from the request's
//! tokens and the model's price: the shipped table (`pricing/prices.toml`,
//! list prices with their date and sources) with an operator's override
//! file on top (negotiated rates, models the table lacks). Model ids are
//! normalised first ([`normalise_model`]), so `claude-sonnet-4-5-20250929`,
//! `us.anthropic.claude-sonnet-4-5-20250929-v1:0` and
//! `claude-sonnet-4-5@20250929` all find `claude-sonnet-4-5`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SHIPPED: &str = include_str!("pricing/prices.toml");

/// Errors loading a price override file.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The file could not be read.
    #[error("cannot read price file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (kept as text so the cause is said once).
        reason: String,
    },
    /// The file is not a valid price table.
    #[error("invalid price file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The price of one model, USD per million tokens.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Who sells it (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Uncached input.
    pub input: f64,
    /// Cache reads (cached input); the input price when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Cache writes; the input price when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Output, reasoning included.
    pub output: f64,
    /// Reasoning output, where it is priced apart from other output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
}

/// A price table file: the shipped one, an override, or what
/// [`from_litellm`] writes.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    models: BTreeMap<String, Price>,
}

/// A request's tokens in tokentally's convention (see [`crate::rows::EventRow`]):
/// input excludes cache reads and writes; output includes reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Uncached input.
    pub input: i64,
    /// Cache reads.
    pub cache_read: i64,
    /// Cache writes.
    pub cache_write: i64,
    /// Output, reasoning included.
    pub output: i64,
    /// The reasoning part of `output`.
    pub reasoning: i64,
}

/// The price table in force: the shipped list prices with an optional
/// override file on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    models: BTreeMap<String, Price>,
    as_of: String,
    sources: BTreeMap<String, String>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing::shipped()
    }
}

impl Pricing {
    /// The shipped table.
    pub fn shipped() -> Pricing {
        // The shipped table is checked by a test; an unreadable one would
        // price nothing rather than fail the server.
        let table: TableFile = toml::from_str(SHIPPED).unwrap_or_default();
        Pricing {
            models: table
                .models
                .into_iter()
                .map(|(k, v)| (normalise_model(&k), v))
                .collect(),
            as_of: table.as_of.unwrap_or_default(),
            sources: table.sources,
        }
    }

    /// The shipped table, with the override file at `path` on top when
    /// there is one (the config's `[pricing] file`, `--prices`).
    pub fn load(path: Option<&Path>) -> Result<Pricing, PricingError> {
        match path {
            Some(p) => Pricing::with_override_file(p),
            None => Ok(Pricing::shipped()),
        }
    }

    /// The shipped table with the entries of `path` on top (an entry
    /// replaces the shipped entry of the same model whole).
    pub fn with_override_file(path: &Path) -> Result<Pricing, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|e| PricingError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut pricing = Pricing::shipped();
        pricing
            .apply_override(&text)
            .map_err(|message| PricingError::Parse {
                path: path.to_owned(),
                message,
            })?;
        Ok(pricing)
    }

    fn apply_override(&mut self, text: &str) -> Result<(), String> {
        let table: TableFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        self.sources.extend(table.sources);
        for (model, price) in table.models {
            for (name, v) in [
                ("input", Some(price.input)),
                ("cached_input", price.cached_input),
                ("cache_write", price.cache_write),
                ("output", Some(price.output)),
                ("reasoning", price.reasoning),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(format!("models.{model}.{name}: {v} is not a price"));
                }
            }
            self.models.insert(normalise_model(&model), price);
        }
        if let Some(as_of) = table.as_of {
            self.as_of = format!("{} (overrides as of {as_of})", self.as_of);
        }
        Ok(())
    }

    /// The date of the shipped prices (and of the overrides, if they say).
    pub fn as_of(&self) -> &str {
        &self.as_of
    }

    /// The table in force as TOML, in the override file's format.
    pub fn to_toml(&self) -> String {
        toml::to_string(&TableFile {
            as_of: Some(self.as_of.clone()),
            sources: self.sources.clone(),
            models: self.models.clone(),
        })
        .unwrap_or_default()
    }

    /// The price of `model` (any spelling [`normalise_model`] understands).
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.models.get(&normalise_model(model))
    }

    /// The cost of `tokens` on `model`, in USD; `None` when the model has
    /// no price.
    pub fn cost(&self, model: &str, tokens: Tokens) -> Option<f64> {
        let p = self.price(model)?;
        let per = |n: i64, price: f64| n.max(0) as f64 * price;
        let output = match p.reasoning {
            Some(r) => {
                let reasoning = tokens.reasoning.clamp(0, tokens.output.max(0));
                per(tokens.output - reasoning, p.output) + per(reasoning, r)
            }
            None => per(tokens.output, p.output),
        };
        let usd = per(tokens.input, p.input)
            + per(tokens.cache_read, p.cached_input.unwrap_or(p.input))
            + per(tokens.cache_write, p.cache_write.unwrap_or(p.input))
            + output;
        Some(usd / 1e6)
    }
}

/// The cost a request counts with, and whether it is the computed one:
/// the agent's own estimate when it sent one, else the price table's.
pub fn counted_cost(reported: Option<f64>, computed: Option<f64>) -> (Option<f64>, bool) {
    match reported {
        Some(c) => (Some(c), false),
        None => (computed, computed.is_some()),
    }
}

/// The providers whose first-party list prices [`from_litellm`] keeps.
const LITELLM_PROVIDERS: [&str; 3] = ["anthropic", "openai", "gemini"];

/// A price override file (TOML) from LiteLLM's community-kept price list
/// (`model_prices_and_context_window.json`: USD per token per model): the
/// chat models of Anthropic, OpenAI and Google's Gemini API, per million
/// tokens, keyed as [`normalise_model`] spells them. `tools/refresh-prices`
/// downloads the list and writes this.
pub fn from_litellm(json: &str, as_of: &str) -> Result<String, String> {
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not LiteLLM's price list: {e}"))?;
    let mut models: BTreeMap<String, Price> = BTreeMap::new();
    for (id, entry) in &all {
        let provider = entry["litellm_provider"].as_str().unwrap_or_default();
        let mode = entry["mode"].as_str().unwrap_or_default();
        if !LITELLM_PROVIDERS.contains(&provider) || !matches!(mode, "chat" | "responses") {
            continue;
        }
        let per_million = |key: &str| {
            entry[key]
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| (v * 1e6 * 1e6).round() / 1e6)
        };
        let (Some(input), Some(output)) = (
            per_million("input_cost_per_token"),
            per_million("output_cost_per_token"),
        ) else {
            continue;
        };
        models.entry(normalise_model(id)).or_insert(Price {
            provider: Some(provider.to_owned()),
            input,
            cached_input: per_million("cache_read_input_token_cost"),
            cache_write: per_million("cache_creation_input_token_cost"),
            output,
            reasoning: per_million("output_cost_per_reasoning_token"),
        });
    }
    if models.is_empty() {
        return Err("no Anthropic, OpenAI or Gemini chat model with prices in the list".into());
    }
    let mut sources = BTreeMap::new();
    sources.insert(
        "litellm".to_owned(),
        "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
            .to_owned(),
    );
    let body = toml::to_string(&TableFile {
        as_of: Some(as_of.to_owned()),
        sources,
        models,
    })
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "# Generated by tools/refresh-prices from LiteLLM's price list: USD per million tokens.\n\
         # Use with `tokentally serve --prices FILE` (entries replace the shipped ones).\n{body}"
    ))
}

/// A model id as the price table keys it: lower case, without a provider
/// path (`openai/`, `models/`), a Bedrock region and vendor prefix
/// (`us.`, `eu.`, `apac.`, `global.`, `anthropic.`), a Bedrock version
/// suffix (`-v1:0`), a Vertex version (`@20250929`), a context variant
/// (`[1m]`), a date suffix (`-20250929`, `-2025-08-07`) or `-latest`.
pub fn normalise_model(raw: &str) -> String {
    let mut m = raw.trim().to_ascii_lowercase();
    if let Some(i) = m.rfind('/') {
        m = m[i + 1..].to_owned();
    }
    if let Some(i) = m.find('[') {
        m.truncate(i);
    }
    if let Some(i) = m.find('@') {
        m.truncate(i);
    }
    for region in [
        "us.", "eu.", "apac.", "au.", "jp.", "ca.", "us-gov.", "global.",
    ] {
        if let Some(rest) = m.strip_prefix(region) {
            m = rest.to_owned();
            break;
        }
    }
    for vendor in ["anthropic.", "openai.", "google."] {
        if let Some(rest) = m.strip_prefix(vendor) {
            m = rest.to_owned();
            break;
        }
    }
    // Bedrock's `-v1:0` / `-v2`.
    if let Some(i) = m.rfind("-v") {
        let tail = &m[i + 2..];
        let (major, minor) = tail.split_once(':').unwrap_or((tail, "0"));
        if !major.is_empty()
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
        {
            m.truncate(i);
        }
    }
    if let Some(rest) = m.strip_suffix("-latest") {
        m = rest.to_owned();
    }
    strip_date(&mut m);
    m
}

/// Removes a trailing `-YYYYMMDD` or `-YYYY-MM-DD`.
fn strip_date(m: &mut String) {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(i) = m.rfind('-') {
        let tail = &m[i + 1..];
        if tail.len() == 8 && digits(tail) && tail.starts_with("20") {
            m.truncate(i);
            return;
        }
    }
    if m.len() > 11 {
        let cut = m.len() - 11;
        let tail = &m[cut..];
        let b = tail.as_bytes();
        if b.first() == Some(&b'-')
            && digits(&tail[1..5])
            && b.get(5) == Some(&b'-')
            && digits(&tail[6..8])
            && b.get(8) == Some(&b'-')
            && digits(&tail[9..11])
        {
            m.truncate(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_and_prices_every_entry() {
        let table: TableFile = toml::from_str(SHIPPED).unwrap();
        assert_eq!(table.models.len(), SHIPPED.matches("\n[models.").count());
        assert!(table.as_of.is_some());
        let p = Pricing::shipped();
        for model in table.models.keys() {
            assert!(p.price(model).is_some(), "{model}");
            assert_eq!(&normalise_model(model), model, "keys are normalised");
        }
    }

    #[test]
    fn provider_spellings_price_as_their_base_model() {
        let p = Pricing::shipped();
        let base = p.price("claude-sonnet-4-5").cloned();
        assert!(base.is_some());
        for id in [
            "claude-sonnet-4-5-20250929",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v2:0",
            "claude-sonnet-4-5@20250929",
            "claude-sonnet-4-5[1m]",
            "anthropic/claude-sonnet-4-5",
            "Claude-Sonnet-4-5",
        ] {
            assert_eq!(p.price(id).cloned(), base, "{id}");
        }
        assert_eq!(normalise_model("gpt-5-2025-08-07"), "gpt-5");
        assert_eq!(
            normalise_model("models/gemini-2.5-flash"),
            "gemini-2.5-flash"
        );
        assert_eq!(
            normalise_model("claude-3-5-haiku-latest"),
            "claude-3-5-haiku"
        );
        assert_eq!(normalise_model("gpt-5.1-codex"), "gpt-5.1-codex");
        assert_eq!(normalise_model("o4-mini"), "o4-mini");
        assert_eq!(normalise_model("my-model-v1x"), "my-model-v1x");
        assert!(p.price("no-such-model").is_none());
        assert!(p.cost("no-such-model", Tokens::default()).is_none());
    }

    #[test]
    fn cost_is_tokens_times_price_per_kind() {
        let p = Pricing::shipped();
        // claude-sonnet-4-5: 3 input, 0.3 cache read, 3.75 cache write, 15 output.
        let t = Tokens {
            input: 1_000,
            cache_read: 10_000,
            cache_write: 2_000,
            output: 500,
            reasoning: 100,
        };
        let want = (1_000.0 * 3.0 + 10_000.0 * 0.3 + 2_000.0 * 3.75 + 500.0 * 15.0) / 1e6;
        let got = p.cost("claude-sonnet-4-5", t).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} {want}");
    }

    #[test]
    fn litellm_prices_become_an_override_file() {
        let list = r#"{
            "sample_spec": {"litellm_provider": "one of ...", "mode": "chat"},
            "claude-sonnet-4-5-20250929": {"litellm_provider": "anthropic", "mode": "chat",
                "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06},
            "gpt-5.5": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-07},
            "gemini/gemini-2.5-flash": {"litellm_provider": "gemini", "mode": "chat",
                "input_cost_per_token": 3e-07, "output_cost_per_token": 2.5e-06,
                "output_cost_per_reasoning_token": 3.5e-06},
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"litellm_provider": "bedrock", "mode": "chat",
                "input_cost_per_token": 9e-06, "output_cost_per_token": 9e-05},
            "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                "input_cost_per_token": 2e-08, "output_cost_per_token": 0}
        }"#;
        let text = from_litellm(list, "2026-12-02").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("litellm.toml");
        std::fs::write(&path, &text).unwrap();
        let p = Pricing::with_override_file(&path).unwrap();
        let sonnet = p.price("claude-sonnet-4-5").unwrap();
        assert_eq!((sonnet.input, sonnet.output), (3.0, 15.0));
        assert_eq!(sonnet.cached_input, Some(0.3));
        assert_eq!(sonnet.cache_write, Some(3.75));
        assert_eq!(p.price("gpt-5.5").unwrap().cached_input, Some(0.125));
        assert_eq!(p.price("gemini-2.5-flash").unwrap().reasoning, Some(3.5));
        assert!(p.price("text-embedding-3-small").is_none());
        assert!(text.contains("as_of = \"2026-12-02\""));
        assert!(from_litellm("{}", "x").is_err());
        assert!(from_litellm("[1]", "x").is_err());
    }

    #[test]
    fn an_override_file_replaces_and_adds_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "as_of = \"2026-11-01\"\n[models.\"gpt-5.5\"]\ninput = 2.0\ncached_input = 0.2\noutput = 16.0\nreasoning = 20.0\n\
             [models.claude-sonnet-4-5]\ninput = 2.4\noutput = 12.0\n",
        )
        .unwrap();
        let p = Pricing::with_override_file(&path).unwrap();
        let t = Tokens {
            input: 900,
            cache_read: 300,
            cache_write: 0,
            output: 45,
            reasoning: 10,
        };
        let want = (900.0 * 2.0 + 300.0 * 0.2 + 35.0 * 16.0 + 10.0 * 20.0) / 1e6;
        assert!((p.cost("gpt-5.5-2026-04-01", t).unwrap() - want).abs() < 1e-12);
        // No cache prices given: input price for both.
        let want = (900.0 * 2.4 + 300.0 * 2.4 + 45.0 * 12.0) / 1e6;
        assert!((p.cost("claude-sonnet-4-5", t).unwrap() - want).abs() < 1e-12);
        assert!(p.as_of().contains("2026-11-01"));

        std::fs::write(&path, "[models.x]\ninput = -1\noutput = 1\n").unwrap();
        let err = Pricing::with_override_file(&path).unwrap_err().to_string();
        assert!(err.contains("models.x.input"), "{err}");
        std::fs::write(&path, "[models.x]\ninptu = 1\noutput = 1\n").unwrap();
        assert!(Pricing::with_override_file(&path).is_err());
    }
}
