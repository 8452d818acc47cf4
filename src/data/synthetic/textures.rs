//! Procedural texture classes. Every good image is a new patch of the same material:
//! fresh noise seed, small rotation, lighting and colour variation.

use super::noise::{cellular, fbm, value};
use super::paint::{mix, smoothstep};
use crate::image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A procedurally generated material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texture {
    /// Looped pile in a woven grid, reddish.
    Carpet,
    /// Grey cement with pores and aggregate.
    Concrete,
    /// Blue twill weave with diagonal ribs.
    Fabric,
    /// Speckled pink-grey stone.
    Granite,
    /// Brown grain of cells and creases.
    Leather,
    /// Brushed metal: fine streaks in one direction.
    Metal,
    /// Wood with annual rings and grain.
    Wood,
}

impl Texture {
    /// Renders one good sample of the material.
    pub fn render(self, size: usize, rng: &mut ChaCha8Rng) -> RgbImage {
        let seed: u64 = rng.random();
        let angle: f32 = rng.random_range(-0.12..0.12);
        let (sin, cos) = angle.sin_cos();
        let offset = (rng.random_range(0.0..1000.0), rng.random_range(0.0..1000.0));
        let light = rng.random_range(0.9..1.1);
        let tint = [0, 1, 2].map(|_| rng.random_range(0.97..1.03));
        let s = size as f32;
        let mut image = RgbImage::zeros(size, size);
        for y in 0..size {
            for x in 0..size {
                // Texture coordinates in units of the image side, rotated and shifted.
                let (u, v) = (x as f32 / s - 0.5, y as f32 / s - 0.5);
                let (u, v) = (cos * u - sin * v + 0.5, sin * u + cos * v + 0.5);
                let rgb = self.shade(u, v, offset, seed);
                image.set_pixel(
                    x,
                    y,
                    [0, 1, 2].map(|c| (rgb[c] * light * tint[c]).clamp(0.0, 1.0)),
                );
            }
        }
        image
    }

    fn shade(self, u: f32, v: f32, offset: (f32, f32), seed: u64) -> [f32; 3] {
        let (ou, ov) = (u + offset.0, v + offset.1);
        match self {
            Texture::Carpet => {
                let cells = 22.0;
                let (cu, cv) = (ou * cells, ov * cells);
                let loop_shape = ((cu.fract() - 0.5).powi(2) + (cv.fract() - 0.5).powi(2)).sqrt();
                let pile = 1.0 - smoothstep(0.25, 0.55, loop_shape);
                let fibre = fbm(ou * 90.0, ov * 90.0, 3, seed);
                let shade = 0.55 + 0.3 * pile + 0.25 * (fibre - 0.5);
                [0.62 * shade, 0.22 * shade, 0.2 * shade]
            }
            Texture::Concrete => {
                let base = 0.55 + 0.25 * (fbm(ou * 6.0, ov * 6.0, 5, seed) - 0.5);
                let grit = 0.12 * (value(ou * 160.0, ov * 160.0, seed ^ 1) - 0.5);
                let (pore, _) = cellular(ou * 18.0, ov * 18.0, seed ^ 2);
                let pore_dark = 1.0
                    - 0.35
                        * (1.0 - smoothstep(0.05, 0.12, pore))
                        * f32::from(value(ou * 18.0, ov * 18.0, seed ^ 3) > 0.7);
                let g = (base + grit) * pore_dark;
                [g, g * 0.98, g * 0.95]
            }
            Texture::Fabric => {
                let threads = 40.0;
                let diagonal = ((ou + ov) * threads * std::f32::consts::PI).sin();
                let warp = (ou * threads * 2.0 * std::f32::consts::PI).sin();
                let weave = 0.5 + 0.25 * diagonal + 0.1 * warp;
                let fuzz = fbm(ou * 120.0, ov * 120.0, 2, seed) - 0.5;
                let shade = 0.45 + 0.35 * weave + 0.15 * fuzz;
                [0.25 * shade, 0.35 * shade, 0.75 * shade]
            }
            Texture::Granite => {
                let base = fbm(ou * 10.0, ov * 10.0, 4, seed);
                let grain = value(ou * 70.0, ov * 70.0, seed ^ 5);
                let speck = value(ou * 45.0, ov * 45.0, seed ^ 6);
                let mut rgb = mix([0.72, 0.62, 0.6], [0.55, 0.55, 0.57], base);
                if grain > 0.78 {
                    rgb = [0.15, 0.14, 0.15];
                } else if speck > 0.8 {
                    rgb = [0.85, 0.8, 0.78];
                }
                rgb.map(|c| c * (0.9 + 0.2 * value(ou * 200.0, ov * 200.0, seed ^ 7)))
            }
            Texture::Leather => {
                let warp = 0.15 * (fbm(ou * 4.0, ov * 4.0, 3, seed) - 0.5);
                let (d1, d2) = cellular(ou * 16.0 + warp * 16.0, ov * 16.0, seed ^ 8);
                let crease = smoothstep(0.0, 0.18, d2 - d1);
                let pebble = 1.0 - 0.5 * d1;
                let shade = 0.45
                    + 0.25 * crease * pebble
                    + 0.1 * (fbm(ou * 60.0, ov * 60.0, 2, seed) - 0.5);
                [0.62 * shade + 0.05, 0.4 * shade + 0.02, 0.25 * shade]
            }
            Texture::Metal => {
                let streak = fbm(ou * 3.0, ov * 300.0, 3, seed);
                let sheen = 0.08 * (fbm(ou * 2.0, ov * 2.0, 2, seed ^ 9) - 0.5);
                let g = 0.58 + 0.22 * (streak - 0.5) + sheen;
                [g * 0.97, g, g * 1.03]
            }
            Texture::Wood => {
                let warp = fbm(ou * 3.0, ov * 0.6, 4, seed);
                let rings = ((ou * 9.0 + warp * 3.0) * std::f32::consts::TAU).sin() * 0.5 + 0.5;
                let grain = fbm(ou * 80.0, ov * 6.0, 3, seed ^ 10);
                let shade = 0.55 + 0.2 * rings + 0.15 * (grain - 0.5);
                [0.78 * shade, 0.52 * shade, 0.3 * shade]
            }
        }
    }
}
