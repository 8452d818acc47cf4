//! Ground-truth regions: the 8-connected components of a defect mask.

use ndarray::{Array2, ArrayView2};

/// The 8-connected defect regions of one mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    /// Region per pixel: 0 for a good pixel, k >= 1 for a pixel of region k.
    pub labels: Array2<usize>,
    /// Pixel count per region: `sizes[k - 1]` is the size of region k.
    pub sizes: Vec<usize>,
}

impl Regions {
    /// Labels the 8-connected components of the defect pixels (true) of `mask`,
    /// numbered from 1 in raster order of their first pixel.
    pub fn label(mask: ArrayView2<bool>) -> Self {
        let (rows, cols) = mask.dim();
        let mut labels = Array2::<usize>::zeros((rows, cols));
        let mut sizes = Vec::new();
        let mut stack = Vec::new();
        for ((row, col), &defect) in mask.indexed_iter() {
            if !defect || labels[[row, col]] != 0 {
                continue;
            }
            let id = sizes.len() + 1;
            let mut size = 0;
            labels[[row, col]] = id;
            stack.push((row, col));
            while let Some((r, c)) = stack.pop() {
                size += 1;
                for nr in r.saturating_sub(1)..=(r + 1).min(rows - 1) {
                    for nc in c.saturating_sub(1)..=(c + 1).min(cols - 1) {
                        if mask[[nr, nc]] && labels[[nr, nc]] == 0 {
                            labels[[nr, nc]] = id;
                            stack.push((nr, nc));
                        }
                    }
                }
            }
            sizes.push(size);
        }
        Regions { labels, sizes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn diagonal_neighbours_connect() {
        let mask = array![
            [true, false, false, true],
            [false, true, false, false],
            [false, false, false, false],
            [true, true, false, true],
        ];
        let regions = Regions::label(mask.view());
        assert_eq!(regions.sizes, vec![2, 1, 2, 1]);
        assert_eq!(
            regions.labels,
            array![[1, 0, 0, 2], [0, 1, 0, 0], [0, 0, 0, 0], [3, 3, 0, 4]]
        );
    }

    #[test]
    fn winding_region_is_one() {
        let mask = array![
            [true, true, true],
            [false, false, true],
            [true, true, true],
            [true, false, false],
        ];
        let regions = Regions::label(mask.view());
        assert_eq!(regions.sizes, vec![8]);
    }

    #[test]
    fn empty_and_full_masks() {
        assert!(Regions::label(Array2::from_elem((3, 2), false).view())
            .sizes
            .is_empty());
        assert_eq!(
            Regions::label(Array2::from_elem((3, 2), true).view()).sizes,
            vec![6]
        );
        assert!(Regions::label(Array2::from_elem((0, 0), true).view())
            .sizes
            .is_empty());
    }
}
