//! Poisson image editing (normal clone): seamless blending of a source patch into a destination.
//!
//! Inside a rectangular region of the destination, each channel `f` solves the discrete
//! Poisson equation `Laplace(f) = Laplace(source patch)` (4-neighbour Laplacian) on the
//! region's interior, with `f` fixed to the destination on the region's outer ring
//! (Dirichlet boundary). The ring lies inside the image, so regions touching the image
//! border need no special case. The linear system is solved by conjugate gradient.

use crate::error::{Error, Result};
use crate::image::RgbImage;

/// An axis-aligned rectangle of pixels: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Rect {
    /// Whether pixel (x, y) lies inside the rectangle.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        x >= self.x && y >= self.y && x - self.x < self.width && y - self.y < self.height
    }

    /// Whether the rectangle lies entirely inside an image of the given size.
    pub fn fits_in(&self, width: usize, height: usize) -> bool {
        self.x
            .checked_add(self.width)
            .is_some_and(|right| right <= width)
            && self
                .y
                .checked_add(self.height)
                .is_some_and(|bottom| bottom <= height)
    }
}

/// Poisson "normal clone" blender with its conjugate-gradient stopping rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoissonBlender {
    /// Conjugate gradient stops once every interior pixel satisfies the discrete Poisson
    /// equation to within this absolute residual (intensity units, images in [0, 1]).
    pub tolerance: f64,
    /// Most conjugate-gradient iterations per channel; when reached, the current
    /// (approximate) solution is used and a warning is logged.
    pub max_iterations: usize,
}

impl Default for PoissonBlender {
    /// Tolerance 1e-6 and at most 5000 iterations: enough for regions a few hundred
    /// pixels wide.
    fn default() -> Self {
        PoissonBlender {
            tolerance: 1e-6,
            max_iterations: 5000,
        }
    }
}

/// The equation's data for one channel of one region, in region-local coordinates.
struct ChannelProblem<'a> {
    destination: &'a [f32],
    destination_width: usize,
    source: &'a [f32],
    source_width: usize,
    region: Rect,
    source_origin: (usize, usize),
}

impl ChannelProblem<'_> {
    /// Destination sample at region-local (x, y).
    fn dst(&self, x: usize, y: usize) -> f64 {
        f64::from(
            self.destination[(self.region.y + y) * self.destination_width + self.region.x + x],
        )
    }

    /// Source sample at region-local (x, y).
    fn src(&self, x: usize, y: usize) -> f64 {
        let (sx, sy) = self.source_origin;
        f64::from(self.source[(sy + y) * self.source_width + sx + x])
    }

    /// Whether region-local (x, y) is on the region's outer ring.
    fn on_ring(&self, x: usize, y: usize) -> bool {
        x == 0 || y == 0 || x == self.region.width - 1 || y == self.region.height - 1
    }
}

impl PoissonBlender {
    /// Blends the patch of `source` whose top-left corner is `source_origin` (same size as
    /// `region`) into `destination` over `region`. Only the region's interior is written;
    /// its outer ring keeps the destination values. Values are clamped to [0, 1] after
    /// solving, never during.
    ///
    /// Errors when the region is smaller than 3x3, or when it or the source patch does
    /// not lie inside its image.
    pub fn blend(
        &self,
        destination: &mut RgbImage,
        source: &RgbImage,
        region: Rect,
        source_origin: (usize, usize),
    ) -> Result<()> {
        let solution = self.solve(destination, source, region, source_origin)?;
        let inner_width = region.width - 2;
        let width = destination.width();
        for (channel, values) in solution.iter().enumerate() {
            let plane = destination.plane_mut(channel);
            for (row, chunk) in values.chunks_exact(inner_width).enumerate() {
                let start = (region.y + 1 + row) * width + region.x + 1;
                for (out, &v) in plane[start..start + inner_width].iter_mut().zip(chunk) {
                    *out = v.clamp(0.0, 1.0) as f32;
                }
            }
        }
        Ok(())
    }

    /// Validates the arguments and solves each channel; returns the unclamped interior
    /// values per channel, row-major over the `(width - 2) x (height - 2)` interior.
    fn solve(
        &self,
        destination: &RgbImage,
        source: &RgbImage,
        region: Rect,
        source_origin: (usize, usize),
    ) -> Result<[Vec<f64>; 3]> {
        if region.width < 3 || region.height < 3 {
            return Err(Error::invalid(format!(
                "Poisson blending region must be at least 3x3 pixels, got {}x{}",
                region.width, region.height
            )));
        }
        if !region.fits_in(destination.width(), destination.height()) {
            return Err(Error::invalid(format!(
                "Poisson blending region {region:?} does not lie inside the {}x{} destination",
                destination.width(),
                destination.height()
            )));
        }
        let source_rect = Rect {
            x: source_origin.0,
            y: source_origin.1,
            ..region
        };
        if !source_rect.fits_in(source.width(), source.height()) {
            return Err(Error::invalid(format!(
                "source patch {source_rect:?} does not lie inside the {}x{} source",
                source.width(),
                source.height()
            )));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(Error::invalid(format!(
                "Poisson tolerance must be positive and finite, got {}",
                self.tolerance
            )));
        }
        let solve_channel = |channel| {
            self.solve_channel(&ChannelProblem {
                destination: destination.plane(channel),
                destination_width: destination.width(),
                source: source.plane(channel),
                source_width: source.width(),
                region,
                source_origin,
            })
        };
        Ok([solve_channel(0), solve_channel(1), solve_channel(2)])
    }

    /// Conjugate gradient on the interior unknowns of one channel.
    fn solve_channel(&self, problem: &ChannelProblem) -> Vec<f64> {
        let (width, height) = (problem.region.width, problem.region.height);
        let (inner_width, inner_height) = (width - 2, height - 2);

        // Right-hand side: Laplacian of the source plus the known ring neighbours.
        let mut rhs = Vec::with_capacity(inner_width * inner_height);
        for y in 1..height - 1 {
            for x in 1..width - 1 {
                let neighbours = [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)];
                let mut value = 4.0 * problem.src(x, y);
                for (nx, ny) in neighbours {
                    value -= problem.src(nx, ny);
                    if problem.on_ring(nx, ny) {
                        value += problem.dst(nx, ny);
                    }
                }
                rhs.push(value);
            }
        }

        // Initial guess: the source shifted by the mean ring offset, exact for a source
        // that differs from the destination by a constant.
        let ring: Vec<(usize, usize)> = (0..width)
            .flat_map(|x| [(x, 0), (x, height - 1)])
            .chain((1..height - 1).flat_map(|y| [(0, y), (width - 1, y)]))
            .collect();
        let offset = ring
            .iter()
            .map(|&(x, y)| problem.dst(x, y) - problem.src(x, y))
            .sum::<f64>()
            / ring.len() as f64;
        let mut solution: Vec<f64> = (1..height - 1)
            .flat_map(|y| (1..width - 1).map(move |x| (x, y)))
            .map(|(x, y)| problem.src(x, y) + offset)
            .collect();

        let mut product = vec![0.0; solution.len()];
        apply_interior_laplacian(&solution, inner_width, inner_height, &mut product);
        let mut residual: Vec<f64> = rhs.iter().zip(&product).map(|(b, ax)| b - ax).collect();
        let mut direction = residual.clone();
        let mut residual_norm2 = dot(&residual, &residual);

        for _ in 0..self.max_iterations {
            if max_abs(&residual) <= self.tolerance {
                return solution;
            }
            apply_interior_laplacian(&direction, inner_width, inner_height, &mut product);
            let curvature = dot(&direction, &product);
            // Only a zero or NaN curvature (degenerate input) stops the iteration.
            if curvature.is_nan() || curvature <= 0.0 {
                break;
            }
            let step = residual_norm2 / curvature;
            for ((x, r), (d, ad)) in solution
                .iter_mut()
                .zip(residual.iter_mut())
                .zip(direction.iter().zip(&product))
            {
                *x += step * d;
                *r -= step * ad;
            }
            let next_norm2 = dot(&residual, &residual);
            let beta = next_norm2 / residual_norm2;
            residual_norm2 = next_norm2;
            for (d, r) in direction.iter_mut().zip(&residual) {
                *d = r + beta * *d;
            }
        }
        if max_abs(&residual) > self.tolerance {
            log::warn!(
                "Poisson blending stopped after {} iterations with residual {:.3e} above tolerance {:.3e}",
                self.max_iterations,
                max_abs(&residual),
                self.tolerance
            );
        }
        solution
    }
}

/// `out = A x` for the interior system: 4 x minus the interior neighbours (ring
/// neighbours are known and live in the right-hand side).
fn apply_interior_laplacian(x: &[f64], width: usize, height: usize, out: &mut [f64]) {
    for row in 0..height {
        for col in 0..width {
            let i = row * width + col;
            let mut value = 4.0 * x[i];
            if col > 0 {
                value -= x[i - 1];
            }
            if col + 1 < width {
                value -= x[i + 1];
            }
            if row > 0 {
                value -= x[i - width];
            }
            if row + 1 < height {
                value -= x[i + width];
            }
            out[i] = value;
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wave pattern `level + amplitude * sin(fx x + phase + c) cos(fy y - c)` per channel c.
    fn pattern(
        width: usize,
        height: usize,
        freq: (f32, f32),
        phase: f32,
        level: f32,
        amplitude: f32,
    ) -> RgbImage {
        let mut image = RgbImage::zeros(width, height);
        for y in 0..height {
            for x in 0..width {
                let v = |c: f32| {
                    level
                        + amplitude
                            * (x as f32 * freq.0 + phase + c).sin()
                            * (y as f32 * freq.1 - c).cos()
                };
                image.set_pixel(x, y, [v(0.0), v(1.0), v(2.0)]);
            }
        }
        image
    }

    /// A smooth destination-like image with values in [0.1, 0.6].
    fn smooth(width: usize, height: usize, phase: f32) -> RgbImage {
        pattern(width, height, (0.14, 0.11), phase, 0.35, 0.25)
    }

    /// Full region-local field (ring from the destination, interior from the solution).
    fn field(dst: &RgbImage, region: Rect, channel: usize, interior: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(region.width * region.height);
        for y in 0..region.height {
            for x in 0..region.width {
                let on_ring = x == 0 || y == 0 || x == region.width - 1 || y == region.height - 1;
                out.push(if on_ring {
                    f64::from(dst.plane(channel)[(region.y + y) * dst.width() + region.x + x])
                } else {
                    interior[(y - 1) * (region.width - 2) + x - 1]
                });
            }
        }
        out
    }

    fn laplacian(values: &[f64], width: usize, x: usize, y: usize) -> f64 {
        let at = |x: usize, y: usize| values[y * width + x];
        4.0 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1)
    }

    #[test]
    fn poisson_equation_holds_inside_region() {
        let dst = smooth(40, 30, 1.0);
        let src = pattern(50, 50, (0.3, 0.3), 2.0, 0.5, 0.2);
        let blender = PoissonBlender::default();
        // An interior region and one touching the bottom-right image corner.
        for (region, origin) in [
            (
                Rect {
                    x: 5,
                    y: 4,
                    width: 25,
                    height: 18,
                },
                (10, 20),
            ),
            (
                Rect {
                    x: 20,
                    y: 12,
                    width: 20,
                    height: 18,
                },
                (0, 0),
            ),
        ] {
            let solution = blender.solve(&dst, &src, region, origin).unwrap();
            for (channel, interior) in solution.iter().enumerate() {
                let f = field(&dst, region, channel, interior);
                let mut s = Vec::new();
                for y in 0..region.height {
                    for x in 0..region.width {
                        s.push(f64::from(
                            src.plane(channel)[(origin.1 + y) * src.width() + origin.0 + x],
                        ));
                    }
                }
                for y in 1..region.height - 1 {
                    for x in 1..region.width - 1 {
                        let residual =
                            laplacian(&f, region.width, x, y) - laplacian(&s, region.width, x, y);
                        assert!(residual.abs() <= 1e-5, "residual {residual} at ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn constant_offset_source_reproduces_destination() {
        let dst = smooth(32, 32, 2.0);
        let planar: Vec<f32> = dst.as_planar().iter().map(|v| v + 0.3).collect();
        let src = RgbImage::from_planar(32, 32, planar).unwrap();
        let mut blended = dst.clone();
        let region = Rect {
            x: 3,
            y: 6,
            width: 20,
            height: 15,
        };
        PoissonBlender::default()
            .blend(&mut blended, &src, region, (3, 6))
            .unwrap();
        for (a, b) in blended.as_planar().iter().zip(dst.as_planar()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    fn largest_step(image: &RgbImage) -> f32 {
        let mut largest = 0.0f32;
        for c in 0..3 {
            let p = image.plane(c);
            let w = image.width();
            for y in 0..image.height() {
                for x in 0..w {
                    if x + 1 < w {
                        largest = largest.max((p[y * w + x] - p[y * w + x + 1]).abs());
                    }
                    if y + 1 < image.height() {
                        largest = largest.max((p[y * w + x] - p[(y + 1) * w + x]).abs());
                    }
                }
            }
        }
        largest
    }

    /// Largest step across the region's ring: interior <-> ring and ring <-> outside.
    fn seam_step(image: &RgbImage, region: Rect) -> f32 {
        let inner = Rect {
            x: region.x + 1,
            y: region.y + 1,
            width: region.width - 2,
            height: region.height - 2,
        };
        let (w, h) = (image.width(), image.height());
        let crosses = |a: (usize, usize), b: (usize, usize)| {
            inner.contains(a.0, a.1) != inner.contains(b.0, b.1)
                || region.contains(a.0, a.1) != region.contains(b.0, b.1)
        };
        let mut largest = 0.0f32;
        for c in 0..3 {
            let p = image.plane(c);
            for y in 0..h {
                for x in 0..w {
                    for (nx, ny) in [(x + 1, y), (x, y + 1)] {
                        if nx < w && ny < h && crosses((x, y), (nx, ny)) {
                            largest = largest.max((p[y * w + x] - p[ny * w + nx]).abs());
                        }
                    }
                }
            }
        }
        largest
    }

    #[test]
    fn seam_is_continuous() {
        // Sources of other frequencies, phases and levels (up to 0.25 above the destination).
        // The exact normal clone carries the ring mismatch into the interior, so the seam
        // step can exceed both images' own largest steps (up to about 1.75x here); it
        // must stay within twice that, while a plain copy jumps far more.
        let dst = smooth(48, 48, 0.0);
        let region = Rect {
            x: 10,
            y: 8,
            width: 24,
            height: 30,
        };
        let origin = (12, 10);
        let sources = [
            ((0.14, 0.11), 0.0, 0.6),
            ((0.2, 0.05), 1.0, 0.3),
            ((0.3, 0.3), 2.0, 0.5),
            ((0.05, 0.07), 3.0, 0.4),
            ((0.14, 0.11), 2.5, 0.6),
            ((0.5, 0.4), 0.3, 0.5),
        ];
        for (freq, phase, level) in sources {
            let src = pattern(48, 48, freq, phase, level, 0.2);
            let bound = 2.0 * largest_step(&dst).max(largest_step(&src)) + 1e-4;

            let mut blended = dst.clone();
            PoissonBlender::default()
                .blend(&mut blended, &src, region, origin)
                .unwrap();
            let blended_seam = seam_step(&blended, region);
            assert!(
                blended_seam <= bound,
                "{freq:?}: seam step {blended_seam} above {bound}"
            );

            if (level - 0.35f32).abs() >= 0.2 {
                let mut pasted = dst.clone();
                for y in 1..region.height - 1 {
                    for x in 1..region.width - 1 {
                        let value = src.pixel(origin.0 + x, origin.1 + y);
                        pasted.set_pixel(region.x + x, region.y + y, value);
                    }
                }
                assert!(
                    seam_step(&pasted, region) > 2.0 * bound,
                    "{freq:?}: copy seam"
                );
            }
        }
    }

    #[test]
    fn bad_regions_are_errors() {
        let mut dst = smooth(20, 20, 0.0);
        let src = smooth(10, 10, 0.0);
        let blender = PoissonBlender::default();
        let cases = [
            (
                Rect {
                    x: 0,
                    y: 0,
                    width: 2,
                    height: 5,
                },
                (0, 0),
            ),
            (
                Rect {
                    x: 0,
                    y: 0,
                    width: 5,
                    height: 2,
                },
                (0, 0),
            ),
            (
                Rect {
                    x: 16,
                    y: 0,
                    width: 5,
                    height: 5,
                },
                (0, 0),
            ),
            (
                Rect {
                    x: 0,
                    y: 18,
                    width: 5,
                    height: 5,
                },
                (0, 0),
            ),
            (
                Rect {
                    x: usize::MAX,
                    y: 0,
                    width: 5,
                    height: 5,
                },
                (0, 0),
            ),
            (
                Rect {
                    x: 0,
                    y: 0,
                    width: 8,
                    height: 8,
                },
                (3, 0),
            ),
            (
                Rect {
                    x: 0,
                    y: 0,
                    width: 12,
                    height: 5,
                },
                (0, 0),
            ),
        ];
        for (region, origin) in cases {
            let result = blender.blend(&mut dst, &src, region, origin);
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{region:?} {origin:?}"
            );
        }
        // A region covering the whole image, touching every border, is fine.
        let full = Rect {
            x: 0,
            y: 0,
            width: 10,
            height: 10,
        };
        let mut small = smooth(10, 10, 1.0);
        blender.blend(&mut small, &src, full, (0, 0)).unwrap();
    }
}
