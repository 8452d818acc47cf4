//! Images: the caller's buffers (any stride, format and layout) and the library's
//! internal RGB float image.

mod descriptor;
mod mask;
mod overlay;
mod rgb;

pub use descriptor::{ImageGeometry, ImageView, Layout, PixelFormat, MAX_PIXELS, MAX_SIDE};
pub use mask::Mask;
pub use overlay::overlay;
pub use rgb::RgbImage;
