//! Builds the diffusion model a configuration describes: resolves the device, creates
//! the codec (loading the backbone or the VAE from their files), the UNet and the AMN,
//! initialises them from the seed, and loads optional SD1.5 UNet weights and the
//! cross-attention context.

use super::backbone::{EfficientNetLite0, FeatureBackbone, TorchScriptBackbone};
use super::checkpoint::{load_mapped, read_tensors};
use super::codec::{FeatureCodec, LatentCodec, PixelCodec, VaeCodec};
use super::diffusion::DiffusionModel;
use super::init::reinitialise;
use crate::config::{Codec, Config};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// The key prefix of the UNet in an original SD1.5 checkpoint.
pub const SD_UNET_PREFIX: &str = "model.diffusion_model.";

/// The saved tensor (bytes, u8) holding a user's TorchScript scoring backbone.
pub const SCORER_MODULE_KEY: &str = "scorer_module.torchscript";

/// Tokens of the constant context when no context file is given.
const DEFAULT_CONTEXT_TOKENS: i64 = 77;

/// The variable store holding every weight, and the networks over it.
pub struct BuiltModel {
    /// UNet (`unet.*`), AMN (`amn.*`), codec statistics (`codec.*`) and the frozen
    /// scoring backbone (`backbone.*`).
    pub vs: VarStore,
    /// The model.
    pub model: DiffusionModel,
    /// The frozen ImageNet backbone (shared with the `features` codec).
    pub backbone: Arc<EfficientNetLite0>,
    /// The backbone the scorer compares reconstructions with: the user's TorchScript
    /// module when `scorer_backbone` names one, otherwise [`BuiltModel::backbone`].
    pub scorer_backbone: Arc<dyn FeatureBackbone>,
}

/// The EfficientNet-Lite0 weights file a configuration names (or the default).
pub fn backbone_path(config: &Config) -> PathBuf {
    if config.backbone_weights.is_empty() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".models/efficientnet_lite0.safetensors")
    } else {
        PathBuf::from(&config.backbone_weights)
    }
}

/// Where the frozen networks' weights come from.
pub enum WeightSource<'a> {
    /// The files the configuration names; trainable parts initialised from the seed.
    Files,
    /// A saved detector: every variable of the store, by name.
    Saved(&'a BTreeMap<String, Tensor>, &'a Path),
}

/// Creates the frozen scoring backbone under `backbone.` in `vs`.
fn backbone(
    vs: &VarStore,
    config: &Config,
    source: &WeightSource<'_>,
) -> Result<Arc<EfficientNetLite0>> {
    let network = EfficientNetLite0::new(vs.root() / "backbone");
    if let WeightSource::Files = source {
        let path = backbone_path(config);
        load_mapped(
            vs,
            "backbone.",
            &EfficientNetLite0::read_weights(&path)?,
            "",
            &path,
        )?;
    }
    Ok(Arc::new(network))
}

/// The scorer's backbone: the built-in one, or the configured TorchScript module (from
/// its file, or from a saved detector's bytes), checked to return enough feature maps.
fn scorer_backbone(
    config: &Config,
    source: &WeightSource<'_>,
    builtin: &Arc<EfficientNetLite0>,
    device: Device,
) -> Result<Arc<dyn FeatureBackbone>> {
    if config.scorer_backbone.is_empty() {
        return Ok(builtin.clone());
    }
    let module = match source {
        WeightSource::Files => {
            TorchScriptBackbone::load(Path::new(&config.scorer_backbone), device)?
        }
        WeightSource::Saved(tensors, path) => {
            let bytes = tensors.get(SCORER_MODULE_KEY).ok_or_else(|| {
                Error::FileFormat(format!(
                    "{}: the configuration names a TorchScript scorer backbone but the file holds no '{SCORER_MODULE_KEY}'",
                    path.display()
                ))
            })?;
            let bytes =
                Vec::<u8>::try_from(bytes.to_kind(Kind::Uint8).view([-1])).map_err(|e| {
                    Error::FileFormat(format!("{}: {SCORER_MODULE_KEY}: {e}", path.display()))
                })?;
            TorchScriptBackbone::from_bytes(bytes, &path.display().to_string(), device)?
        }
    };
    let needed = config.score_map_count();
    let side = config.image_size as i64;
    let probe = Tensor::zeros([1, 3, side, side], (Kind::Float, device));
    let maps = module.feature_maps(&probe, needed)?;
    if maps.len() < needed {
        return Err(Error::invalid(format!(
            "TorchScript backbone {}: returns {} feature map(s) but score_layers {:?} needs {needed}",
            config.scorer_backbone,
            maps.len(),
            config.score_layers
        )));
    }
    Ok(Arc::new(module))
}

fn codec(
    config: &Config,
    vs: &VarStore,
    device: Device,
    backbone: &Arc<EfficientNetLite0>,
) -> Result<Box<dyn LatentCodec>> {
    Ok(match config.codec {
        Codec::Pixel => Box::new(PixelCodec::new(config.pixel_factor as i64)),
        Codec::Features => Box::new(FeatureCodec::new(
            vs.root() / "codec",
            Arc::clone(backbone),
            false,
        )),
        Codec::Vae => {
            if config.vae_weights.is_empty() {
                return Err(Error::invalid(
                    "codec 'vae' needs the SD1.5 VAE weights: set vae_weights to a safetensors file",
                ));
            }
            Box::new(VaeCodec::load(Path::new(&config.vae_weights), device)?)
        }
    })
}

fn context(config: &Config) -> Result<Option<Tensor>> {
    let width = config.unet_context_dim as i64;
    if width == 0 {
        return Ok(None);
    }
    if config.context_weights.is_empty() {
        return Ok(Some(Tensor::zeros(
            [1, DEFAULT_CONTEXT_TOKENS, width],
            (Kind::Float, Device::Cpu),
        )));
    }
    let path = Path::new(&config.context_weights);
    let tensors = read_tensors(path)?;
    let mut values = tensors.into_values();
    let (Some(tensor), None) = (values.next(), values.next()) else {
        return Err(Error::invalid(format!(
            "{}: expected exactly one tensor (the context)",
            path.display()
        )));
    };
    let tensor = if tensor.dim() == 2 {
        tensor.unsqueeze(0)
    } else {
        tensor
    };
    if tensor.dim() != 3 || tensor.size()[0] != 1 || tensor.size()[2] != width {
        return Err(Error::invalid(format!(
            "{}: context of shape {:?}; expected tokens x {width} or 1 x tokens x {width}",
            path.display(),
            tensor.size()
        )));
    }
    Ok(Some(tensor.to_kind(Kind::Float)))
}

/// Builds the model of `config` on its device: from the configured files with the
/// trainable parts initialised from `config.seed`, or entirely from saved weights.
pub fn build_model(config: &Config, source: WeightSource<'_>) -> Result<BuiltModel> {
    config.validate()?;
    let device = config.device.resolve()?;
    let vs = VarStore::new(device);
    let backbone = backbone(&vs, config, &source)?;
    let scorer_backbone = scorer_backbone(config, &source, &backbone, device)?;
    let codec = codec(config, &vs, device, &backbone)?;
    let model = DiffusionModel::new(&vs.root(), config, codec, context(config)?)?;
    match source {
        WeightSource::Files => {
            reinitialise(&vs, config.seed, &["unet.", "amn."]);
            if !config.unet_weights.is_empty() {
                let path = Path::new(&config.unet_weights);
                load_mapped(&vs, "unet.", &read_tensors(path)?, SD_UNET_PREFIX, path)?;
            }
        }
        WeightSource::Saved(tensors, path) => {
            let variables: BTreeMap<String, Tensor> = tensors
                .iter()
                .filter(|(name, _)| name.as_str() != SCORER_MODULE_KEY)
                .map(|(name, t)| (name.clone(), t.shallow_clone()))
                .collect();
            load_mapped(&vs, "", &variables, "", path)?
        }
    }
    for (name, variable) in vs.variables() {
        if name.starts_with("backbone.") || name.starts_with("codec.") {
            let _ = variable.set_requires_grad(false);
        }
    }
    Ok(BuiltModel {
        vs,
        model,
        backbone,
        scorer_backbone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    #[test]
    fn the_tiny_and_compact_presets_build_and_reconstruct_at_their_sizes() {
        for preset in [Preset::Tiny, Preset::Compact] {
            let mut config = preset.config();
            config.device = crate::device::DeviceChoice::Cpu;
            let built = build_model(&config, WeightSource::Files).unwrap();
            let side = config.image_size as i64;
            let images = Tensor::zeros([1, 3, side, side], (Kind::Float, Device::Cpu));
            let mut rng = rand::SeedableRng::seed_from_u64(0);
            let (z0, estimate) = built.model.reconstruct(&images, 999, 2, &mut rng);
            assert_eq!(z0.size(), estimate.size(), "{preset:?}");
            let stride = built.model.codec().stride();
            assert_eq!(z0.size()[2], side / stride, "{preset:?}");
        }
    }

    #[test]
    fn missing_files_are_named_and_unet_weights_load_from_an_sd_checkpoint() {
        let mut config = Preset::Tiny.config();
        config.codec = Codec::Vae;
        config.image_size = 64;
        let err = build_model(&config, WeightSource::Files)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("vae_weights"), "{err}");

        let mut config = Preset::Compact.config();
        config.backbone_weights = "/nonexistent/lite0.safetensors".into();
        let err = build_model(&config, WeightSource::Files)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent/lite0.safetensors"), "{err}");

        // Save the tiny UNet under SD's names from one seed and load it into another.
        let dir = tempfile::tempdir().unwrap();
        let source = build_model(&Preset::Tiny.config(), WeightSource::Files).unwrap();
        let unet_vars: Vec<(String, Tensor)> = source
            .vs
            .variables()
            .into_iter()
            .filter(|(n, _)| n.starts_with("unet."))
            .collect();
        let mut named = Vec::new();
        for (name, t) in &unet_vars {
            named.push((
                format!("{SD_UNET_PREFIX}{}", &name["unet.".len()..]),
                t.shallow_clone(),
            ));
        }
        let path = dir.path().join("sd.safetensors");
        Tensor::write_safetensors(&named, &path).unwrap();
        let mut config = Preset::Tiny.config();
        config.seed = 99;
        config.unet_weights = path.to_string_lossy().into_owned();
        let loaded = build_model(&config, WeightSource::Files).unwrap();
        let (a, b) = (source.vs.variables(), loaded.vs.variables());
        assert!(a["unet.input_blocks.0.0.weight"].equal(&b["unet.input_blocks.0.0.weight"]));
        assert!(
            !a["amn.stem.0.weight"].equal(&b["amn.stem.0.weight"]),
            "only the UNet comes from the file"
        );
    }

    #[test]
    fn the_context_comes_from_a_one_tensor_file_of_the_right_width() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Preset::Paper.config();
        assert_eq!(context(&config).unwrap().unwrap().size(), [1, 77, 768]);
        let path = dir.path().join("empty_prompt.safetensors");
        let embedding = Tensor::ones([77, 768], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("context", &embedding)], &path).unwrap();
        config.context_weights = path.to_string_lossy().into_owned();
        let loaded = context(&config).unwrap().unwrap();
        assert_eq!(loaded.size(), [1, 77, 768]);
        assert_eq!(loaded.sum(Kind::Float).double_value(&[]), 77.0 * 768.0);
        Tensor::write_safetensors(
            &[(
                "context",
                &Tensor::ones([77, 512], (Kind::Float, Device::Cpu)),
            )],
            &path,
        )
        .unwrap();
        assert!(context(&config)
            .unwrap_err()
            .to_string()
            .contains("expected tokens x 768"));
        config.unet_context_dim = 0;
        assert!(context(&config).unwrap().is_none());
    }
}
