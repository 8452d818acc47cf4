//! The Stable-Diffusion-style UNet denoiser.
