//! Procedural object classes, seen from above on a plain background, with pose, scale,
//! lighting and colour variation. Part faults (a missing tooth, a swapped wire, a
//! misplaced component, ...) are drawn by rendering the same pose with the fault; the
//! ground truth is the set of pixels where the two renders differ.

use super::noise::{fbm, value};
use super::paint::{mix, smoothstep};
use crate::image::{Mask, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{PI, TAU};

/// A procedurally drawn part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A ridged metal bottle cap with a printed logo.
    BottleCap,
    /// A cable cross-section: three coloured insulated wires in a sheath.
    Cable,
    /// A two-coloured pharmaceutical capsule with an imprint.
    Capsule,
    /// A spur gear with a bore.
    Gear,
    /// A hexagonal nut.
    HexNut,
    /// A small circuit board with traces and components.
    Pcb,
    /// A screw lying on its side.
    Screw,
    /// A flat ring washer.
    Washer,
}

/// A fault of one part of an object, drawn by re-rendering with the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartFault {
    /// The folder name of the fault.
    pub name: &'static str,
    /// Which element is affected (a tooth, a wire, a component, ...).
    pub index: usize,
    /// A fault-specific amount in [0, 1] (shift, size of a bite, ...).
    pub amount: f32,
}

/// The random state of one sample: pose, lighting and colours.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    centre: (f32, f32),
    angle: f32,
    scale: f32,
    light: f32,
    hue: f32,
    seed: u64,
}

impl Object {
    /// The names of this object's part faults.
    pub fn fault_names(self) -> &'static [&'static str] {
        match self {
            Object::BottleCap => &["missing_logo", "dent"],
            Object::Cable => &["swapped_wire", "missing_wire"],
            Object::Capsule => &["missing_print", "faulty_imprint"],
            Object::Gear => &["missing_tooth", "broken_tooth"],
            Object::HexNut => &["misplaced_bore", "chipped_corner"],
            Object::Pcb => &["missing_part", "misplaced_part"],
            Object::Screw => &["missing_tip", "damaged_thread"],
            Object::Washer => &["notch", "misshapen"],
        }
    }

    /// A random pose for one sample.
    pub fn random_pose(self, rng: &mut ChaCha8Rng) -> Pose {
        let free_rotation = matches!(
            self,
            Object::BottleCap | Object::Gear | Object::HexNut | Object::Washer | Object::Cable
        );
        Pose {
            centre: (
                0.5 + rng.random_range(-0.04..0.04),
                0.5 + rng.random_range(-0.04..0.04),
            ),
            angle: if free_rotation {
                rng.random_range(0.0..TAU)
            } else {
                rng.random_range(-0.12..0.12)
            },
            scale: rng.random_range(0.94..1.06),
            light: rng.random_range(0.88..1.1),
            hue: rng.random_range(-1.0..1.0),
            seed: rng.random(),
        }
    }

    /// A random fault of the named kind.
    pub fn random_fault(self, name: &'static str, rng: &mut ChaCha8Rng) -> PartFault {
        let elements = match self {
            Object::Gear => 12,
            Object::Cable => 3,
            Object::Pcb => 5,
            Object::HexNut => 6,
            _ => 4,
        };
        PartFault {
            name,
            index: rng.random_range(0..elements),
            amount: rng.random_range(0.4..1.0),
        }
    }

    /// Renders the object; returns the image and the mask of the object's surface.
    pub fn render(self, size: usize, pose: &Pose, fault: Option<PartFault>) -> (RgbImage, Mask) {
        let s = size as f32;
        let radius = 0.36 * s * pose.scale;
        let (sin, cos) = pose.angle.sin_cos();
        let background = self.background(pose);
        let mut image = RgbImage::zeros(size, size);
        let mut surface = Mask::zeros(size, size);
        for y in 0..size {
            for x in 0..size {
                let (px, py) = (
                    x as f32 + 0.5 - pose.centre.0 * s,
                    y as f32 + 0.5 - pose.centre.1 * s,
                );
                let (u, v) = (
                    (cos * px + sin * py) / radius,
                    (-sin * px + cos * py) / radius,
                );
                let bg_shade =
                    1.0 + 0.06 * (fbm(x as f32 / s * 3.0, y as f32 / s * 3.0, 2, pose.seed) - 0.5);
                let mut rgb = background.map(|c| c * bg_shade);
                // Soft shadow below the part.
                let shadow = self
                    .shade(u - 0.03, v - 0.05, pose, fault, 1.0 / radius)
                    .map_or(0.0, |(_, a)| a);
                rgb = rgb.map(|c| c * (1.0 - 0.25 * shadow));
                if let Some((colour, coverage)) = self.shade(u, v, pose, fault, 1.0 / radius) {
                    let lit = colour.map(|c| c * pose.light * (1.0 - 0.12 * (u + v) / 2.0));
                    rgb = mix(rgb, lit, coverage);
                    surface.set(x, y, coverage > 0.5);
                }
                image.set_pixel(x, y, rgb.map(|c| c.clamp(0.0, 1.0)));
            }
        }
        (image, surface)
    }

    fn background(self, pose: &Pose) -> [f32; 3] {
        let base = match self {
            Object::Pcb | Object::Capsule | Object::Screw => [0.12, 0.12, 0.13],
            Object::Cable => [0.9, 0.9, 0.88],
            _ => [0.22, 0.24, 0.27],
        };
        base.map(|c| c * (1.0 + 0.04 * pose.hue))
    }

    /// Colour and coverage of the object at object coordinates (u, v) (radius 1 = the
    /// object's nominal size); `px` is one pixel in object units, for anti-aliasing.
    fn shade(
        self,
        u: f32,
        v: f32,
        pose: &Pose,
        fault: Option<PartFault>,
        px: f32,
    ) -> Option<([f32; 3], f32)> {
        let r = (u * u + v * v).sqrt();
        let theta = v.atan2(u);
        let cover = |distance_inside: f32| (distance_inside / px + 0.5).clamp(0.0, 1.0);
        let faulty = |name: &str| fault.filter(|f| f.name == name);
        let grain = value(u * 40.0, v * 40.0, pose.seed) - 0.5;
        match self {
            Object::BottleCap => {
                let dent = faulty("dent").map_or(0.0, |f| {
                    let centre = f.index as f32 * TAU / 4.0;
                    let d = angle_distance(theta, centre);
                    0.12 * f.amount * (1.0 - smoothstep(0.0, 0.5, d))
                });
                let rim = 0.95 - dent + 0.02 * (theta * 24.0).sin();
                let a = cover(rim - r);
                if a <= 0.0 {
                    return None;
                }
                let metal = [0.75, 0.12 + 0.05 * pose.hue, 0.12];
                let ridge = 0.85 + 0.15 * (theta * 24.0).sin() * smoothstep(0.75, 0.9, r);
                let mut rgb = metal.map(|c| c * ridge * (1.0 + 0.1 * grain));
                if faulty("missing_logo").is_none() {
                    let ring = cover(0.06 - (r - 0.45).abs());
                    let star = cover(0.22 + 0.08 * (theta * 5.0).cos() - r);
                    rgb = mix(rgb, [0.95, 0.9, 0.75], ring.max(star));
                }
                Some((rgb, a))
            }
            Object::Cable => {
                let sheath = cover(0.95 - r);
                if sheath <= 0.0 {
                    return None;
                }
                let mut rgb = [0.2, 0.2, 0.22].map(|c| c * (1.0 + 0.15 * grain));
                let colours = [[0.2, 0.45, 0.85], [0.3, 0.7, 0.3], [0.85, 0.75, 0.2]];
                for wire in 0..3 {
                    let missing = faulty("missing_wire").is_some_and(|f| f.index == wire);
                    let swapped = faulty("swapped_wire").filter(|f| f.index == wire);
                    let a = wire as f32 * TAU / 3.0 + PI / 2.0;
                    let (cx, cy) = (0.45 * a.cos(), 0.45 * a.sin());
                    let d = ((u - cx).powi(2) + (v - cy).powi(2)).sqrt();
                    let insulation = cover(0.38 - d);
                    let copper = cover(0.2 - d);
                    if missing {
                        rgb = mix(rgb, [0.06, 0.06, 0.07], cover(0.34 - d));
                        continue;
                    }
                    let colour = match swapped {
                        Some(_) => colours[(wire + 1) % 3],
                        None => colours[wire],
                    };
                    rgb = mix(rgb, colour, insulation);
                    let strands = 0.8 + 0.2 * ((u - cx) * 60.0).sin() * ((v - cy) * 60.0).cos();
                    rgb = mix(rgb, [0.8 * strands, 0.5 * strands, 0.25 * strands], copper);
                }
                Some((rgb, sheath))
            }
            Object::Capsule => {
                // A horizontal capsule: a rounded box of half-length 0.95, half-height 0.38.
                let (hx, hy) = (0.95 - 0.38, 0.38);
                let dx = (u.abs() - hx).max(0.0);
                let inside = hy - (dx * dx + v * v).sqrt();
                let a = cover(inside);
                if a <= 0.0 {
                    return None;
                }
                let shade = 0.75 + 0.25 * (1.0 - (v / hy).powi(2)).max(0.0).sqrt();
                let left = [0.85, 0.25 + 0.1 * pose.hue, 0.2];
                let right = [0.92, 0.9, 0.85];
                let mut rgb = if u < 0.0 { left } else { right }.map(|c| c * shade);
                if faulty("missing_print").is_none() {
                    let shift = faulty("faulty_imprint").map_or(0.0, |f| 0.12 + 0.1 * f.amount);
                    let band = cover(0.04 - (v + shift).abs()) * cover(0.35 - (u - 0.35).abs());
                    let dots = cover(
                        0.05 - ((u - 0.35 * 0.5).powi(2) + (v + shift - 0.15).powi(2)).sqrt(),
                    );
                    rgb = mix(rgb, [0.15, 0.15, 0.2], band.max(dots));
                }
                Some((rgb, a))
            }
            Object::Gear => {
                let teeth = 12.0;
                let phase = (theta / TAU * teeth).rem_euclid(1.0);
                let tooth_index = ((theta.rem_euclid(TAU)) / TAU * teeth) as usize;
                let tooth = smoothstep(0.15, 0.3, phase) * (1.0 - smoothstep(0.6, 0.75, phase));
                let mut outer = 0.78 + 0.17 * tooth;
                if let Some(f) = faulty("missing_tooth").filter(|f| f.index == tooth_index) {
                    outer = 0.78 - 0.02 * f.amount;
                }
                if let Some(f) = faulty("broken_tooth").filter(|f| f.index == tooth_index) {
                    outer = 0.78 + 0.17 * tooth * (0.35 + 0.2 * (1.0 - f.amount));
                }
                let a = cover(outer - r).min(cover(r - 0.22));
                if a <= 0.0 {
                    return None;
                }
                let hub = smoothstep(0.33, 0.36, r) * (1.0 - smoothstep(0.58, 0.61, r));
                let steel = [0.68, 0.68, 0.7].map(|c| c * (0.9 + 0.1 * hub + 0.12 * grain));
                Some((steel, a))
            }
            Object::HexNut => {
                let chip = faulty("chipped_corner").map_or(0.0, |f| {
                    let corner = f.index as f32 * PI / 3.0;
                    0.18 * f.amount * (1.0 - smoothstep(0.0, 0.3, angle_distance(theta, corner)))
                });
                let sector = (theta.rem_euclid(PI / 3.0)) - PI / 6.0;
                let hex = 0.9 * (PI / 6.0).cos() / sector.cos() - chip;
                let (bx, by) =
                    faulty("misplaced_bore").map_or((0.0, 0.0), |f| (0.12 + 0.1 * f.amount, 0.05));
                let bore = ((u - bx).powi(2) + (v - by).powi(2)).sqrt();
                let a = cover(hex - r).min(cover(bore - 0.38));
                if a <= 0.0 {
                    return None;
                }
                let thread =
                    0.85 + 0.15 * (bore * 80.0).sin() * (1.0 - smoothstep(0.38, 0.46, bore));
                let bevel = 0.85 + 0.15 * smoothstep(hex - 0.12, hex - 0.02, r);
                Some((
                    [0.6, 0.58, 0.52].map(|c| c * thread * bevel * (1.0 + 0.1 * grain)),
                    a,
                ))
            }
            Object::Pcb => {
                let board = cover(0.9 - u.abs()).min(cover(0.7 - v.abs()));
                if board <= 0.0 {
                    return None;
                }
                let mut rgb = [0.1, 0.42 + 0.05 * pose.hue, 0.2].map(|c| c * (1.0 + 0.1 * grain));
                for k in 0..4 {
                    let ty = -0.5 + 0.33 * k as f32;
                    let trace = cover(0.025 - (v - ty - 0.08 * (u * 3.0 + k as f32).sin()).abs());
                    rgb = mix(rgb, [0.75, 0.6, 0.3], trace * 0.8);
                }
                let parts = [
                    (-0.55, -0.35, 0.18, 0.12),
                    (0.1, -0.3, 0.25, 0.15),
                    (0.55, 0.1, 0.12, 0.2),
                    (-0.4, 0.35, 0.2, 0.1),
                    (0.2, 0.42, 0.1, 0.08),
                ];
                for (i, &(cx, cy, hw, hh)) in parts.iter().enumerate() {
                    if faulty("missing_part").is_some_and(|f| f.index == i) {
                        let pad =
                            cover(hw * 0.5 - (u - cx).abs()).min(cover(hh + 0.03 - (v - cy).abs()));
                        rgb = mix(rgb, [0.8, 0.78, 0.75], pad * 0.9);
                        continue;
                    }
                    let (sx, sy) = faulty("misplaced_part")
                        .filter(|f| f.index == i)
                        .map_or((0.0, 0.0), |f| (0.1 * f.amount, 0.08 * f.amount));
                    let body = cover(hw - (u - cx - sx).abs()).min(cover(hh - (v - cy - sy).abs()));
                    let pins = cover(0.02 - ((u - cx - sx) * 12.0).sin().abs() * 0.05)
                        * cover(hh + 0.05 - (v - cy - sy).abs())
                        * cover(hw - 0.02 - (u - cx - sx).abs());
                    rgb = mix(rgb, [0.85, 0.85, 0.82], pins);
                    rgb = mix(rgb, [0.08, 0.08, 0.09], body);
                }
                Some((rgb, board))
            }
            Object::Screw => {
                // Head on the left (u < -0.6), threaded shank to the right with a pointed tip.
                let tip_end = if faulty("missing_tip").is_some() {
                    0.6 - 0.15 * fault.map_or(0.0, |f| f.amount)
                } else {
                    0.95
                };
                let taper = if u > 0.7 {
                    (0.16 * (tip_end - u) / (tip_end - 0.7)).max(0.0)
                } else {
                    0.16
                };
                let shank = cover(taper - v.abs())
                    .min(cover(u + 0.6))
                    .min(cover(tip_end - u));
                let head = cover(0.3 - v.abs())
                    .min(cover(u + 0.85))
                    .min(cover(-0.6 - u));
                let a = shank.max(head);
                if a <= 0.0 {
                    return None;
                }
                let damaged = faulty("damaged_thread").is_some_and(|f| {
                    (u - (f.index as f32 * 0.25 - 0.3)).abs() < 0.08 + 0.05 * f.amount
                });
                let thread = if u > -0.6 && !damaged {
                    0.75 + 0.25 * ((u * 40.0 + v * 6.0).sin()).abs()
                } else {
                    0.9
                };
                let round = 0.7 + 0.3 * (1.0 - (v / 0.3).powi(2)).max(0.0).sqrt();
                Some((
                    [0.7, 0.7, 0.72].map(|c| c * thread * round * (1.0 + 0.1 * grain)),
                    a,
                ))
            }
            Object::Washer => {
                let stretch = faulty("misshapen").map_or(1.0, |f| 1.0 + 0.12 * f.amount);
                let re = ((u / stretch).powi(2) + v * v).sqrt();
                let mut outer = 0.92;
                if let Some(f) = faulty("notch") {
                    let d = angle_distance(theta, f.index as f32 * PI / 2.0);
                    outer -= 0.25 * f.amount * (1.0 - smoothstep(0.05, 0.15, d));
                }
                let a = cover(outer - re).min(cover(re - 0.42));
                if a <= 0.0 {
                    return None;
                }
                let sheen = 0.85 + 0.15 * (theta * 2.0 + fbm(u * 3.0, v * 3.0, 2, pose.seed)).cos();
                Some((
                    [0.78, 0.76, 0.7].map(|c| c * sheen * (1.0 + 0.08 * grain)),
                    a,
                ))
            }
        }
    }
}

/// Absolute angular distance in [0, pi].
fn angle_distance(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

/// Pixels where two renders differ by more than `threshold` in any channel.
pub fn difference_mask(a: &RgbImage, b: &RgbImage, threshold: f32) -> Mask {
    let mut mask = Mask::zeros(a.width(), a.height());
    for y in 0..a.height() {
        for x in 0..a.width() {
            let (p, q) = (a.pixel(x, y), b.pixel(x, y));
            if (0..3).any(|c| (p[c] - q[c]).abs() > threshold) {
                mask.set(x, y, true);
            }
        }
    }
    mask
}
