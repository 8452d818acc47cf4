//! Surface defects painted onto good images: scratches, pits, cracks, low-contrast
//! stains, contamination (fibres and particles) and colour faults. Each returns the
//! exact mask of the pixels it visibly changed, limited to the part's surface.

use super::paint::{luminance, mix, paint_blob, stroke, Blob, Point};
use crate::image::{Mask, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A defect that can appear on any surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceDefect {
    /// A thin bright or dark curved line.
    Scratch,
    /// A small dark pit with a lit rim.
    Hole,
    /// A dark jagged line with a branch.
    Crack,
    /// A faint, soft-edged discoloured patch.
    Stain,
    /// A foreign fibre or a cluster of particles.
    Contamination,
    /// A region of wrong hue.
    Colour,
}

impl SurfaceDefect {
    /// The folder name of this defect kind.
    pub fn name(self) -> &'static str {
        match self {
            SurfaceDefect::Scratch => "scratch",
            SurfaceDefect::Hole => "hole",
            SurfaceDefect::Crack => "crack",
            SurfaceDefect::Stain => "stain",
            SurfaceDefect::Contamination => "contamination",
            SurfaceDefect::Colour => "colour",
        }
    }

    /// Paints this defect somewhere on `surface` (pixels where the part is) and returns
    /// the mask of changed pixels (never empty).
    pub fn paint(self, image: &mut RgbImage, surface: &Mask, rng: &mut ChaCha8Rng) -> Mask {
        let side = image.width().min(image.height()) as f32;
        let mut mask = Mask::zeros(image.width(), image.height());
        // A few attempts in case a defect lands mostly off the surface.
        for _ in 0..8 {
            let mut trial = image.clone();
            let mut trial_mask = Mask::zeros(image.width(), image.height());
            let centre = point_on(surface, rng);
            match self {
                SurfaceDefect::Scratch => scratch(&mut trial, &mut trial_mask, centre, side, rng),
                SurfaceDefect::Hole => hole(&mut trial, &mut trial_mask, centre, side, rng),
                SurfaceDefect::Crack => crack(&mut trial, &mut trial_mask, centre, side, rng),
                SurfaceDefect::Stain => stain(&mut trial, &mut trial_mask, centre, side, rng),
                SurfaceDefect::Contamination => {
                    contamination(&mut trial, &mut trial_mask, centre, side, rng)
                }
                SurfaceDefect::Colour => {
                    colour_fault(&mut trial, &mut trial_mask, centre, side, rng)
                }
            }
            restrict(image, &mut trial, &mut trial_mask, surface);
            if trial_mask.count() >= 3 {
                *image = trial;
                mask = trial_mask;
                break;
            }
        }
        mask
    }
}

/// Undoes paint outside the surface, so defects stay on the part.
fn restrict(original: &RgbImage, painted: &mut RgbImage, mask: &mut Mask, surface: &Mask) {
    for y in 0..surface.height() {
        for x in 0..surface.width() {
            if !surface.get(x, y) {
                painted.set_pixel(x, y, original.pixel(x, y));
                mask.set(x, y, false);
            }
        }
    }
}

/// A random pixel centre inside the surface (the image centre if the surface is empty).
pub fn point_on(surface: &Mask, rng: &mut ChaCha8Rng) -> Point {
    let total = surface.count();
    if total == 0 {
        return (surface.width() as f32 / 2.0, surface.height() as f32 / 2.0);
    }
    let mut pick = rng.random_range(0..total);
    for (i, &b) in surface.as_bytes().iter().enumerate() {
        if b != 0 {
            if pick == 0 {
                return (
                    (i % surface.width()) as f32 + 0.5,
                    (i / surface.width()) as f32 + 0.5,
                );
            }
            pick -= 1;
        }
    }
    unreachable!("pick is below the surface count")
}

/// A smooth random curve through `centre`: a quadratic Bezier of `length` pixels.
fn curve(centre: Point, length: f32, bend: f32, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
    let (dx, dy) = (angle.cos() * length / 2.0, angle.sin() * length / 2.0);
    let a = (centre.0 - dx, centre.1 - dy);
    let b = (centre.0 + dx, centre.1 + dy);
    let offset = rng.random_range(-bend..bend) * length;
    let control = (
        centre.0 - dy / (length / 2.0) * offset,
        centre.1 + dx / (length / 2.0) * offset,
    );
    (0..=24)
        .map(|i| {
            let t = i as f32 / 24.0;
            let u = 1.0 - t;
            (
                u * u * a.0 + 2.0 * u * t * control.0 + t * t * b.0,
                u * u * a.1 + 2.0 * u * t * control.1 + t * t * b.1,
            )
        })
        .collect()
}

fn scratch(image: &mut RgbImage, mask: &mut Mask, centre: Point, side: f32, rng: &mut ChaCha8Rng) {
    let length = side * rng.random_range(0.1..0.6);
    let points = curve(centre, length, 0.25, rng);
    let width = rng.random_range(0.8..2.2);
    let bright = rng.random_bool(0.6);
    let strength = rng.random_range(0.18..0.45);
    stroke(image, mask, &points, width, 1.0, |old| {
        let target = if bright { [1.0; 3] } else { [0.0; 3] };
        mix(old, target, strength)
    });
}

fn hole(image: &mut RgbImage, mask: &mut Mask, centre: Point, side: f32, rng: &mut ChaCha8Rng) {
    let radius = side * rng.random_range(0.012..0.06) + 0.8;
    let seed = rng.random();
    let darkness = rng.random_range(0.15..0.45);
    let blob = Blob {
        centre: centre,
        radius,
        softness: 1.0,
        roughness: 0.15,
        opacity: 1.0,
        seed,
    };
    paint_blob(image, mask, &blob, |x, y, old| {
        // Shading inside the pit: darker towards the upper-left wall, a lit lower-right rim.
        let (dx, dy) = ((x - centre.0) / radius, (y - centre.1) / radius);
        let rim = ((dx + dy) * 0.7).clamp(0.0, 1.0) * (dx * dx + dy * dy).sqrt();
        let dark = old.map(|v| v * darkness);
        mix(dark, [0.85; 3], rim * 0.5)
    });
}

fn crack(image: &mut RgbImage, mask: &mut Mask, centre: Point, side: f32, rng: &mut ChaCha8Rng) {
    let steps = rng.random_range(8..20);
    let step = side * rng.random_range(0.015..0.03);
    let mut angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let mut points = vec![centre];
    for _ in 0..steps {
        angle += rng.random_range(-0.6..0.6);
        let last = points[points.len() - 1];
        points.push((last.0 + angle.cos() * step, last.1 + angle.sin() * step));
    }
    let width = rng.random_range(0.7..1.6);
    let darkness = rng.random_range(0.25..0.5);
    stroke(image, mask, &points, width, 1.0, |old| {
        old.map(|v| v * darkness)
    });
    let start = points[rng.random_range(2..points.len() - 1)];
    let mut branch_angle = angle + rng.random_range(0.6..1.4);
    let mut branch = vec![start];
    for _ in 0..steps / 2 {
        branch_angle += rng.random_range(-0.5..0.5);
        let last = branch[branch.len() - 1];
        branch.push((
            last.0 + branch_angle.cos() * step,
            last.1 + branch_angle.sin() * step,
        ));
    }
    stroke(image, mask, &branch, width * 0.7, 1.0, |old| {
        old.map(|v| v * darkness)
    });
}

fn stain(image: &mut RgbImage, mask: &mut Mask, centre: Point, side: f32, rng: &mut ChaCha8Rng) {
    let radius = side * rng.random_range(0.04..0.16);
    let seed = rng.random();
    let tint = [[0.55, 0.42, 0.2], [0.25, 0.3, 0.2], [0.6, 0.6, 0.65]][rng.random_range(0..3)];
    let strength = rng.random_range(0.18..0.35);
    let blob = Blob {
        centre: centre,
        radius,
        softness: radius * 0.25,
        roughness: 0.5,
        opacity: strength / 0.35,
        seed,
    };
    paint_blob(image, mask, &blob, |_, _, old| {
        let shade = luminance(old);
        mix(old, tint.map(|t| t * (0.6 + shade)), 0.35)
    });
}

fn contamination(
    image: &mut RgbImage,
    mask: &mut Mask,
    centre: Point,
    side: f32,
    rng: &mut ChaCha8Rng,
) {
    let colour = [[0.08, 0.07, 0.06], [0.9, 0.88, 0.8], [0.55, 0.25, 0.1]][rng.random_range(0..3)];
    if rng.random_bool(0.5) {
        // A fibre: long, thin, wavy.
        let length = side * rng.random_range(0.15..0.5);
        let points = curve(centre, length, 0.45, rng);
        stroke(
            image,
            mask,
            &points,
            rng.random_range(0.7..1.4),
            0.9,
            |_| colour,
        );
    } else {
        // A cluster of particles.
        let count = rng.random_range(2..7);
        let spread = side * rng.random_range(0.02..0.06);
        for _ in 0..count {
            let p = (
                centre.0 + rng.random_range(-spread..spread),
                centre.1 + rng.random_range(-spread..spread),
            );
            let radius = rng.random_range(0.8..2.5);
            let seed = rng.random();
            let blob = Blob {
                centre: p,
                radius,
                softness: 0.8,
                roughness: 0.3,
                opacity: 1.0,
                seed,
            };
            paint_blob(image, mask, &blob, |_, _, _| colour);
        }
    }
}

fn colour_fault(
    image: &mut RgbImage,
    mask: &mut Mask,
    centre: Point,
    side: f32,
    rng: &mut ChaCha8Rng,
) {
    let radius = side * rng.random_range(0.05..0.18);
    let seed = rng.random();
    let shift = rng.random_range(0..2);
    let blob = Blob {
        centre: centre,
        radius,
        softness: radius * 0.15,
        roughness: 0.35,
        opacity: 1.0,
        seed,
    };
    paint_blob(image, mask, &blob, |_, _, old| {
        // Rotate the colour channels: keeps brightness and texture, changes hue.
        let rotated = if shift == 0 {
            [old[1], old[2], old[0]]
        } else {
            [old[2], old[0], old[1]]
        };
        let lum = luminance(old);
        mix(
            rotated,
            [lum + 0.25, lum, lum - 0.2].map(|v| v.clamp(0.0, 1.0)),
            0.5,
        )
    });
}
