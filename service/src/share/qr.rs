//! QR images of a share link, for a phone camera across a clinic desk:
//! error correction M (what SMART Health Links ask for), 8-pixel modules
//! and the standard 4-module quiet zone, black on white.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module in the PNG.
pub const MODULE_PX: u32 = 8;
/// Quiet-zone width in modules (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE: u32 = 4;

/// Why a QR could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The content does not fit a QR code at level M.
    #[error("the link does not fit a QR code: {0}")]
    TooLong(String),
    /// PNG encoding failed.
    #[error("encoding the PNG: {0}")]
    Png(String),
}

fn code(content: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M).map_err(|e| QrError::TooLong(e.to_string()))
}

/// The QR as a 1-bit grayscale PNG.
pub fn png(content: &str) -> Result<Vec<u8>, QrError> {
    let code = code(content)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    // One bit per pixel, rows padded to whole bytes; 1 = white.
    let row_bytes = side.div_ceil(8) as usize;
    let mut pixels = vec![0xffu8; row_bytes * side as usize];
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = (x / MODULE_PX, y / MODULE_PX);
            let dark = mx >= QUIET_ZONE
                && my >= QUIET_ZONE
                && mx < QUIET_ZONE + modules
                && my < QUIET_ZONE + modules
                && colors[((my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)) as usize] == Color::Dark;
            if dark {
                pixels[y as usize * row_bytes + (x / 8) as usize] &= !(0x80 >> (x % 8));
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().map_err(|e| QrError::Png(e.to_string()))?;
        writer.write_image_data(&pixels).map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// The QR as SVG (scales to any screen).
pub fn svg(content: &str) -> Result<String, QrError> {
    Ok(code(content)?
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .build())
}

/// The QR version (1–40) the content needs at level M.
pub fn version(content: &str) -> Result<i16, QrError> {
    match code(content)?.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_svg_render_at_level_m() {
        let content = format!("shlink:/{}", "A".repeat(600));
        let png = png(&content).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = svg(&content).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(version(&content).expect("version") <= 22, "stays within what phones read easily");
        assert!(matches!(png_err(&"x".repeat(4000)), QrError::TooLong(_)));
    }

    fn png_err(content: &str) -> QrError {
        png(content).expect_err("too long")
    }
}
