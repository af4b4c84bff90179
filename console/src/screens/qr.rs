//! QR codes as SVG images (`data:image/svg+xml,…`, which the server's Content-Security-Policy
//! allows for images), drawn in the page by the `qrcode` crate: nothing is fetched.

use qrcode::QrCode;
use qrcode::render::svg;

/// `text` as a QR code (error correction M, quiet zone kept), as an `<img src>`; `None` if
/// it is too long for a QR code.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(264, 264)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    let encoded: String = js_sys::encode_uri_component(&image).into();
    Some(format!("data:image/svg+xml,{encoded}"))
}
