//! The detector's configuration: every tunable value, three presets, and typed access
//! by key name with validation (the C API's `cdad_config_*` functions sit on top).

mod presets;
pub mod value;

pub use presets::Preset;
use value::{choice_enum, FieldType, Rule, Value};

use crate::device::DeviceChoice;
use crate::error::{Error, Result};

choice_enum! {
    /// The space the diffusion model runs in.
    Codec {
        /// Frozen pretrained ImageNet backbone features, standardised per channel.
        Features = "features",
        /// Parameter-free pixel unshuffle (space-to-depth).
        Pixel = "pixel",
        /// The Stable Diffusion 1.5 KL-f8 autoencoder, loaded from a file.
        Vae = "vae",
    }
}

choice_enum! {
    /// What the denoiser predicts.
    Prediction {
        /// The added noise (the paper's choice).
        Eps = "eps",
        /// The clean latent.
        X0 = "x0",
        /// The velocity `sqrt(abar) eps - sqrt(1 - abar) x0`.
        V = "v",
    }
}

choice_enum! {
    /// How a task's layer representations are decomposed for gradient projection.
    Decomposition {
        /// Iterative SVD over blocks of images, keeping `U * S` between blocks.
        Isvd = "isvd",
        /// Eigen-decomposition of the accumulated Gram matrix (exact, memory d^2).
        Gram = "gram",
        /// One SVD of the whole representation matrix (reference; memory-hungry).
        Full = "full",
    }
}

/// Declares the configuration struct and its key table from one list of fields, so a
/// field, its rule and its documentation can never drift apart.
macro_rules! config_schema {
    ($($(#[doc = $doc:literal])+ $field:ident : $ty:ty = $rule:expr;)+) => {
        /// Every tunable value of a detector. Build one from a [`Preset`] and override
        /// fields directly or by key with [`Config::set`].
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $($(#[doc = $doc])+ pub $field: $ty,)+
        }

        /// The key table: name, rule, documentation and accessors of every field.
        pub static KEYS: &[KeySpec] = &[$(
            KeySpec {
                name: stringify!($field),
                rule: $rule,
                doc: concat!($($doc),+),
                get: |config: &Config| config.$field.to_value(),
                set: |config: &mut Config, value: Value| config.$field = <$ty>::from_value(value),
            },
        )+];
    };
}

config_schema! {
    /// Seed of every random choice (initialisation, batches, noise, perturbations).
    seed: u64 = Rule::Int { min: 0, max: i64::MAX };
    /// Compute device: `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when present, else CPU).
    device: DeviceChoice = Rule::Device;
    /// Side length in pixels of the square image the model sees.
    image_size: usize = Rule::Int { min: 32, max: 1024 };
    /// The space the diffusion runs in: `features`, `pixel` or `vae`.
    codec: Codec = Rule::Choice(Codec::NAMES);
    /// Down-scaling factor of the `pixel` codec (space-to-depth block side).
    pixel_factor: usize = Rule::Int { min: 1, max: 16 };
    /// Denoiser target: `eps`, `x0` or `v`.
    prediction: Prediction = Rule::Choice(Prediction::NAMES);
    /// Number of diffusion timesteps T of the noise schedule.
    timesteps: usize = Rule::Int { min: 10, max: 10_000 };
    /// Width of the UNet's first level (SD: model_channels).
    unet_channels: usize = Rule::Int { min: 8, max: 1024 };
    /// Width multiplier of each UNet level, from the highest resolution down.
    unet_channel_mult: Vec<usize> = Rule::IntList { min: 1, max: 16, min_len: 1, max_len: 6 };
    /// Residual blocks per UNet level.
    unet_res_blocks: usize = Rule::Int { min: 1, max: 4 };
    /// UNet levels (0 = highest resolution) that carry attention blocks.
    unet_attention_levels: Vec<usize> = Rule::IntList { min: 0, max: 5, min_len: 0, max_len: 6 };
    /// Attention heads in the UNet.
    unet_heads: usize = Rule::Int { min: 1, max: 64 };
    /// Width of the cross-attention context; 0 drops cross-attention.
    unet_context_dim: usize = Rule::Int { min: 0, max: 4096 };
    /// Transformer layers in the Anomaly-Masked Network.
    amn_layers: usize = Rule::Int { min: 0, max: 32 };
    /// Attention heads in the Anomaly-Masked Network.
    amn_heads: usize = Rule::Int { min: 1, max: 64 };
    /// Hidden width of the AMN's feed-forward layers.
    amn_ffn: usize = Rule::Int { min: 8, max: 8192 };
    /// Dropout probability inside the AMN's transformer layers.
    amn_dropout: f64 = Rule::Float { min: 0.0, max: 0.9 };
    /// Side k of the neighbour mask: a token may not attend to its own k x k
    /// neighbourhood; 0 switches the mask off (an ablation, not the method).
    amn_mask_size: usize = Rule::Int { min: 0, max: 31 };
    /// Training steps (batches) per task.
    train_steps: usize = Rule::Int { min: 1, max: 10_000_000 };
    /// Images per training batch.
    batch_size: usize = Rule::Int { min: 1, max: 1024 };
    /// AdamW learning rate.
    learning_rate: f64 = Rule::Float { min: 1e-8, max: 1.0 };
    /// Factor on `learning_rate` for every task after the first.
    later_learning_rate_scale: f64 = Rule::Float { min: 1e-3, max: 10.0 };
    /// AdamW weight decay.
    weight_decay: f64 = Rule::Float { min: 0.0, max: 1.0 };
    /// Probability that a training image's condition input is patch-perturbed.
    perturb_prob: f64 = Rule::Float { min: 0.0, max: 1.0 };
    /// Largest gradient norm before clipping; 0 disables clipping.
    grad_clip: f64 = Rule::Float { min: 0.0, max: 1e6 };
    /// Noise level t_s at which inference starts (0-based timestep).
    start_step: usize = Rule::Int { min: 1, max: 9_999 };
    /// DDIM steps from the start level down to 0.
    ddim_steps: usize = Rule::Int { min: 1, max: 1000 };
    /// Reconstructions per image, each from its own noise, whose raw maps are averaged
    /// before smoothing (fewer false positives from one unlucky draw, at that many times
    /// the inference cost).
    map_seeds: usize = Rule::Int { min: 1, max: 32 };
    /// Gaussian smoothing of the anomaly map, in pixels at a 256-pixel image side.
    map_sigma: f64 = Rule::Float { min: 0.0, max: 64.0 };
    /// Backbone feature maps compared by the scorer when the codec has a decoder:
    /// indexes into the backbone's list (EfficientNet-Lite0: 0..=4 = strides 2, 4, 8,
    /// 16, 32; a TorchScript backbone: the maps it returns, in order).
    score_layers: Vec<usize> = Rule::IntList { min: 0, max: 4, min_len: 1, max_len: 5 };
    /// Decomposition of layer representations: `isvd`, `gram` or `full`.
    decomposition: Decomposition = Rule::Choice(Decomposition::NAMES);
    /// Images per iSVD block (the paper's e).
    isvd_block_images: usize = Rule::Int { min: 1, max: 1024 };
    /// Every how many training images one is used for the representation.
    representation_every: usize = Rule::Int { min: 1, max: 1_000_000 };
    /// Fewest training images in the representation: a task whose every
    /// `representation_every`-th image gives fewer contributes this many, evenly spread
    /// (all of them when it has fewer).
    representation_min_images: usize = Rule::Int { min: 1, max: 1_000_000 };
    /// Energy kept of the first task's representation.
    energy_first: f64 = Rule::Float { min: 0.5, max: 1.0 };
    /// Energy threshold for task 2 in later merges (grows by `energy_increment` per task).
    energy_base: f64 = Rule::Float { min: 0.0, max: 1.0 };
    /// Growth of the merge energy threshold per task.
    energy_increment: f64 = Rule::Float { min: 0.0, max: 0.1 };
    /// Project later tasks' updates away from earlier tasks' subspaces (off = fine-tuning).
    projection: bool = Rule::Bool;
    /// With projection: also project every gradient before clipping and AdamW's
    /// moments, so steps keep their full size in the free directions (the final update
    /// is projected either way, which keeps the guarantee).
    project_gradients: bool = Rule::Bool;
    /// EfficientNet-Lite0 weights (safetensors) for the `features` codec and the scorer;
    /// empty = the file scripts/setup.sh installs into the source tree's .models/.
    backbone_weights: String = Rule::Path;
    /// Optional TorchScript backbone for the scorer when the codec decodes (`pixel`,
    /// `vae`): forward(ImageNet-normalised N x 3 x H x W) returns a list or tuple of
    /// feature maps, which `score_layers` indexes; empty = EfficientNet-Lite0. The module
    /// is stored inside saved detectors.
    scorer_backbone: String = Rule::Path;
    /// SD1.5 VAE weights (safetensors, full checkpoint or VAE only) for the `vae` codec.
    vae_weights: String = Rule::Path;
    /// Optional SD1.5 checkpoint (safetensors) to start the UNet from; empty = random init.
    unet_weights: String = Rule::Path;
    /// The constant cross-attention context (safetensors, one tensor of 77 x
    /// unet_context_dim, e.g. CLIP's empty-prompt embedding); empty = zeros.
    context_weights: String = Rule::Path;
}

/// One configuration key: its name, what it accepts, and how to read and write it.
pub struct KeySpec {
    /// The key as written in the API.
    pub name: &'static str,
    /// What the key accepts.
    pub rule: Rule,
    /// What the key means.
    pub doc: &'static str,
    get: fn(&Config) -> Value,
    set: fn(&mut Config, Value),
}

impl KeySpec {
    /// Looks a key up by name.
    pub fn find(name: &str) -> Result<&'static KeySpec> {
        KEYS.iter()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::UnknownKey {
                key: name.to_string(),
                known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            })
    }
}

impl Default for Config {
    fn default() -> Self {
        Preset::Compact.config()
    }
}

impl Config {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<Value> {
        Ok((KeySpec::find(key)?.get)(self))
    }

    /// Sets `key` to `value` after checking its type and range. An integer is accepted
    /// for a float key. On error the configuration is unchanged.
    pub fn set(&mut self, key: &str, value: Value) -> Result<()> {
        let spec = KeySpec::find(key)?;
        let value = match (spec.rule, value) {
            (Rule::Float { .. }, Value::Int(v)) => Value::Float(v as f64),
            (_, value) => value,
        };
        match spec.rule.check(&value) {
            Ok(()) => {
                (spec.set)(self, value);
                Ok(())
            }
            Err(true) => Err(Error::WrongType {
                key: key.to_string(),
                expected: spec.rule.type_name(),
                given: value.type_name(),
            }),
            Err(false) => Err(Error::OutOfRange {
                key: key.to_string(),
                value: value.to_string(),
                accepted: spec.rule.describe(),
            }),
        }
    }

    /// Sets `key` from its text form (`0.97`, `true`, `3,4`, `features`), parsed by the
    /// key's type; the same checks as [`Config::set`] apply.
    pub fn set_text(&mut self, key: &str, text: &str) -> Result<()> {
        let spec = KeySpec::find(key)?;
        let text = text.trim();
        let value = match spec.rule {
            Rule::Int { .. } => text.parse().ok().map(Value::Int),
            Rule::Float { .. } => text.parse().ok().map(Value::Float),
            Rule::Bool => text.parse().ok().map(Value::Bool),
            Rule::Choice(_) | Rule::Device | Rule::Path => Some(Value::Text(text.to_string())),
            Rule::IntList { .. } => text
                .split(',')
                .map(|item| item.trim().parse().ok())
                .collect::<Option<Vec<i64>>>()
                .map(Value::IntList),
        };
        let value = value.ok_or_else(|| Error::WrongType {
            key: key.to_string(),
            expected: spec.rule.type_name(),
            given: "text that does not parse as one",
        })?;
        self.set(key, value)
    }

    /// How many backbone feature maps the scorer reads: the deepest of `score_layers`,
    /// plus one.
    pub fn score_map_count(&self) -> usize {
        self.score_layers
            .iter()
            .max()
            .map_or(1, |&deepest| deepest + 1)
    }

    /// The keys that only change inference, which a trained detector may change.
    pub const INFERENCE_KEYS: &'static [&'static str] =
        &["start_step", "ddim_steps", "map_seeds", "map_sigma"];

    /// Checks the rules that involve several keys (each key's own range is checked when
    /// it is set). A detector is only built from a configuration that passes.
    pub fn validate(&self) -> Result<()> {
        let levels = self.unet_channel_mult.len();
        let downsampling = 1usize << (levels - 1);
        let latent_stride = match self.codec {
            Codec::Features | Codec::Vae => 8,
            Codec::Pixel => self.pixel_factor,
        };
        let stride = latent_stride * downsampling;
        if self.image_size % stride != 0 {
            return Err(Error::invalid(format!(
                "image_size {} must be a multiple of {stride} (codec stride {latent_stride} x \
                 UNet down-sampling {downsampling})",
                self.image_size
            )));
        }
        if let Some(&bad) = self.unet_attention_levels.iter().find(|&&l| l >= levels) {
            return Err(Error::invalid(format!(
                "unet_attention_levels contains level {bad}, but the UNet has only {levels} \
                 levels (0..={})",
                levels - 1
            )));
        }
        if self.unet_channels % 8 != 0 {
            return Err(Error::invalid(format!(
                "unet_channels {} must be a multiple of 8 (GroupNorm groups)",
                self.unet_channels
            )));
        }
        for (name, heads) in [
            ("unet_heads", self.unet_heads),
            ("amn_heads", self.amn_heads),
        ] {
            if self.unet_channels % heads != 0 {
                return Err(Error::invalid(format!(
                    "{name} {heads} must divide unet_channels {}",
                    self.unet_channels
                )));
            }
        }
        if self.amn_mask_size != 0 && self.amn_mask_size % 2 == 0 {
            return Err(Error::invalid(format!(
                "amn_mask_size {} must be odd (the neighbourhood is centred on its token) or 0 (off)",
                self.amn_mask_size
            )));
        }
        if self.start_step >= self.timesteps {
            return Err(Error::invalid(format!(
                "start_step {} must be below timesteps {}",
                self.start_step, self.timesteps
            )));
        }
        if self.ddim_steps > self.start_step {
            return Err(Error::invalid(format!(
                "ddim_steps {} cannot exceed start_step {}",
                self.ddim_steps, self.start_step
            )));
        }
        Ok(())
    }

    /// The configuration as a JSON object, one member per key.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for spec in KEYS {
            let json = match (spec.get)(self) {
                Value::Int(v) => serde_json::json!(v),
                Value::Float(v) => serde_json::json!(v),
                Value::Bool(v) => serde_json::json!(v),
                Value::Text(v) => serde_json::json!(v),
                Value::IntList(v) => serde_json::json!(v),
            };
            map.insert(spec.name.to_string(), json);
        }
        serde_json::Value::Object(map)
    }

    /// Reads a configuration written by [`Config::to_json`]. Keys missing from the
    /// object keep the compact preset's values; unknown keys and bad values are errors.
    pub fn from_json(json: &serde_json::Value) -> Result<Config> {
        let object = json
            .as_object()
            .ok_or_else(|| Error::invalid("configuration JSON must be an object"))?;
        let mut config = Config::default();
        for (key, json_value) in object {
            let spec = KeySpec::find(key)?;
            let value = json_to_value(json_value, spec.rule).ok_or_else(|| Error::WrongType {
                key: key.clone(),
                expected: spec.rule.type_name(),
                given: json_type_name(json_value),
            })?;
            config.set(key, value)?;
        }
        Ok(config)
    }
}

fn json_to_value(json: &serde_json::Value, rule: Rule) -> Option<Value> {
    Some(match rule {
        Rule::Int { .. } => Value::Int(json.as_i64()?),
        Rule::Float { .. } => Value::Float(json.as_f64()?),
        Rule::Bool => Value::Bool(json.as_bool()?),
        Rule::Choice(_) | Rule::Device | Rule::Path => Value::Text(json.as_str()?.to_string()),
        Rule::IntList { .. } => Value::IntList(
            json.as_array()?
                .iter()
                .map(|x| x.as_i64())
                .collect::<Option<Vec<_>>>()?,
        ),
    })
}

fn json_type_name(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_has_its_codec() {
        for (name, codec) in [
            ("tiny", Codec::Pixel),
            ("compact", Codec::Features),
            ("paper", Codec::Vae),
        ] {
            let config = name.parse::<Preset>().unwrap().config();
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.codec, codec, "{name}");
        }
        assert_eq!(Config::default(), Preset::Compact.config());
    }

    #[test]
    fn the_paper_preset_has_the_papers_numbers() {
        let c = Preset::Paper.config();
        assert_eq!(
            (
                c.image_size,
                c.unet_channels,
                c.unet_res_blocks,
                c.unet_context_dim
            ),
            (256, 320, 2, 768)
        );
        assert_eq!(c.unet_channel_mult, vec![1, 2, 4, 4]);
        assert_eq!(
            (c.amn_layers, c.amn_heads, c.amn_ffn, c.amn_mask_size),
            (8, 8, 1024, 7)
        );
        assert_eq!(
            (
                c.batch_size,
                c.learning_rate,
                c.weight_decay,
                c.perturb_prob
            ),
            (12, 1e-5, 0.01, 0.5)
        );
        assert_eq!(
            (c.start_step, c.ddim_steps, c.timesteps, c.prediction),
            (999, 10, 1000, Prediction::Eps)
        );
        assert_eq!((c.energy_first, c.isvd_block_images), (0.999, 1));
        assert_eq!(
            (c.project_gradients, c.later_learning_rate_scale),
            (false, 1.0)
        );
    }

    #[test]
    fn set_and_get_round_trip_every_type() {
        let mut c = Config::default();
        c.set("image_size", Value::Int(256)).unwrap();
        c.set("learning_rate", Value::Float(3e-4)).unwrap();
        c.set("projection", Value::Bool(false)).unwrap();
        c.set("codec", Value::Text("pixel".into())).unwrap();
        c.set("device", Value::Text("cuda:1".into())).unwrap();
        c.set("unet_channel_mult", Value::IntList(vec![1, 2, 3]))
            .unwrap();
        assert_eq!(c.get("image_size").unwrap(), Value::Int(256));
        assert_eq!(c.get("learning_rate").unwrap(), Value::Float(3e-4));
        assert_eq!(c.get("projection").unwrap(), Value::Bool(false));
        assert_eq!(c.codec, Codec::Pixel);
        assert_eq!(c.device, DeviceChoice::Cuda(1));
        assert_eq!(c.get("device").unwrap(), Value::Text("cuda:1".into()));
        assert_eq!(c.unet_channel_mult, vec![1, 2, 3]);
    }

    #[test]
    fn text_values_parse_by_the_key_type() {
        let mut c = Config::default();
        c.set_text("energy_first", "0.97").unwrap();
        c.set_text("train_steps", " 600 ").unwrap();
        c.set_text("projection", "false").unwrap();
        c.set_text("score_layers", "2, 3").unwrap();
        c.set_text("codec", "pixel").unwrap();
        assert_eq!(c.energy_first, 0.97);
        assert_eq!((c.train_steps, c.projection), (600, false));
        assert_eq!(c.score_layers, vec![2, 3]);
        assert_eq!(c.codec, Codec::Pixel);
        let before = c.clone();
        for (key, text) in [("train_steps", "many"), ("projection", "1"), ("score_layers", "2,x")] {
            let err = c.set_text(key, text).unwrap_err();
            assert!(matches!(err, Error::WrongType { .. }), "{key}={text}: {err}");
        }
        assert!(matches!(c.set_text("energy_first", "2.0"), Err(Error::OutOfRange { .. })));
        assert!(matches!(c.set_text("no_such_key", "1"), Err(Error::UnknownKey { .. })));
        assert_eq!(c, before);
    }

    #[test]
    fn an_integer_is_accepted_for_a_float_key_but_not_the_reverse() {
        let mut c = Config::default();
        c.set("weight_decay", Value::Int(0)).unwrap();
        assert_eq!(c.weight_decay, 0.0);
        let err = c.set("image_size", Value::Float(128.0)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongType {
                    expected: "an integer",
                    given: "a float",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key_and_the_accepted_values_and_change_nothing() {
        let mut c = Config::default();
        let before = c.clone();
        let err = c.set("image_sise", Value::Int(64)).unwrap_err();
        assert!(matches!(err, Error::UnknownKey { .. }));
        assert!(
            err.to_string().contains("'image_sise'") && err.to_string().contains("image_size"),
            "{err}"
        );

        let err = c.set("image_size", Value::Int(4096)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration key 'image_size': 4096 is not accepted; expected an integer in 32..=1024"
        );
        let err = c.set("codec", Value::Text("jpeg".into())).unwrap_err();
        assert!(
            err.to_string().contains("one of features, pixel, vae"),
            "{err}"
        );
        let err = c.set("perturb_prob", Value::Float(f64::NAN)).unwrap_err();
        assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
        let err = c.set("device", Value::Text("gpu".into())).unwrap_err();
        assert!(
            err.to_string()
                .contains("'cpu', 'cuda', 'cuda:N' or 'auto'"),
            "{err}"
        );
        let err = c
            .set("unet_channel_mult", Value::IntList(vec![]))
            .unwrap_err();
        assert!(
            err.to_string().contains("a list of 1..=6 integers"),
            "{err}"
        );
        let err = c.set("projection", Value::Int(1)).unwrap_err();
        assert!(matches!(err, Error::WrongType { .. }), "{err}");
        assert_eq!(c, before);
    }

    #[test]
    fn cross_key_rules_are_checked() {
        let mut c = Preset::Tiny.config();
        c.set("image_size", Value::Int(36)).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("multiple of 8"));
        let mut c = Preset::Tiny.config();
        c.set("unet_attention_levels", Value::IntList(vec![3]))
            .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("level 3"));
        let mut c = Preset::Tiny.config();
        c.set("amn_mask_size", Value::Int(4)).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("odd"));
        let mut c = Preset::Tiny.config();
        c.set("unet_heads", Value::Int(3)).unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must divide"));
    }

    #[test]
    fn json_round_trips_and_rejects_bad_input() {
        for preset in [Preset::Tiny, Preset::Compact, Preset::Paper] {
            let config = preset.config();
            assert_eq!(Config::from_json(&config.to_json()).unwrap(), config);
        }
        let partial = serde_json::json!({"seed": 7, "codec": "pixel"});
        let c = Config::from_json(&partial).unwrap();
        assert_eq!((c.seed, c.codec, c.image_size), (7, Codec::Pixel, 128));
        let err = Config::from_json(&serde_json::json!({"seed": "seven"})).unwrap_err();
        assert!(
            matches!(err, Error::WrongType { given: "text", .. }),
            "{err}"
        );
        assert!(Config::from_json(&serde_json::json!({"nope": 1})).is_err());
        assert!(Config::from_json(&serde_json::json!([1, 2])).is_err());
    }

    #[test]
    fn every_key_has_documentation_and_a_readable_value() {
        let c = Config::default();
        for spec in KEYS {
            assert!(!spec.doc.trim().is_empty(), "{} has no doc", spec.name);
            let value = c.get(spec.name).unwrap();
            assert_eq!(
                spec.rule.check(&value),
                Ok(()),
                "{} default fails its own rule",
                spec.name
            );
        }
    }
}
