//! The child-mode pictograms, shared by the app (child mode) and the researcher console (the
//! child's answers drawn as the child saw them): simple inline SVGs in one style (thick dark
//! outlines, soft fills, 100x100), keyed by the protocol card's `picture` name. Nothing is
//! loaded from outside the app. Unknown names get a friendly star.

const O: &str = r##"fill="none" stroke="#1b1d1f" stroke-width="5" stroke-linecap="round" stroke-linejoin="round""##;

fn face(fill: &str, mouth: &str, extra: &str) -> String {
    format!(
        r##"<circle cx="50" cy="50" r="42" fill="{fill}" stroke="#1b1d1f" stroke-width="5"/><circle cx="36" cy="42" r="5" fill="#1b1d1f"/><circle cx="64" cy="42" r="5" fill="#1b1d1f"/><path d="{mouth}" {O}/>{extra}"##
    )
}

fn person(x: f32, y: f32, s: f32, fill: &str) -> String {
    // Big enough to read at card size.
    let s = s * 1.45;
    format!(
        r##"<circle cx="{x}" cy="{}" r="{}" fill="{fill}" stroke="#1b1d1f" stroke-width="4"/><path d="M{} {} q{} -{} {} 0 v{} h-{} z" fill="{fill}" stroke="#1b1d1f" stroke-width="4" stroke-linejoin="round"/>"##,
        y - 14.0 * s,
        9.0 * s,
        x - 13.0 * s,
        y + 24.0 * s,
        13.0 * s,
        26.0 * s,
        26.0 * s,
        0.0,
        26.0 * s,
    )
}

/// A thumb (up, or turned for down).
fn thumb(fill: &str, transform: &str) -> String {
    format!(
        r##"<g{transform}><path d="M30 46 h-14 v40 h14 z" fill="#ffffff" {O}/><path d="M30 46 l16 -30 q10 0 8 12 l-4 14 h26 q8 2 6 10 l-6 26 q-2 8 -10 8 h-36 z" fill="{fill}" {O}/></g>"##
    )
}

/// The SVG markup of a pictogram.
pub fn svg(name: &str) -> String {
    let inner = match name {
        "face-very-happy" => face("#ffd84d", "M28 58 q22 26 44 0 z", ""),
        "face-happy" => face("#ffe680", "M32 60 q18 16 36 0", ""),
        "face-in-between" => face("#f2efe6", "M33 64 h34", ""),
        "face-sad" => face("#c9def5", "M32 68 q18 -14 36 0", ""),
        "face-very-sad" => face(
            "#a9c6ea",
            "M30 72 q20 -20 40 0",
            r##"<path d="M36 52 q-4 10 0 12 q4 -2 0 -12" fill="#3a7bd5"/>"##,
        ),
        "question-mark" => format!(
            r##"<circle cx="50" cy="50" r="42" fill="#e8e4f7" stroke="#1b1d1f" stroke-width="5"/><path d="M37 38 q0 -14 13 -14 q14 0 14 12 q0 10 -14 14 v8" {O}/><circle cx="50" cy="72" r="5" fill="#1b1d1f"/>"##
        ),
        "yes" => thumb("#bfe6c4", ""),
        "not-sure" => face("#f2efe6", "M32 64 q9 -6 18 0 q9 6 18 0", ""),
        "no" => thumb("#f6d2c9", r##" transform="rotate(180 50 50)""##),
        "camera" => format!(
            r##"<rect x="12" y="32" width="60" height="40" rx="8" fill="#ffd9a8" stroke="#1b1d1f" stroke-width="5"/><path d="M72 44 l18 -10 v32 l-18 -10 z" fill="#ffd9a8" {O}/><circle cx="30" cy="24" r="9" {O}/><circle cx="52" cy="24" r="9" {O}/>"##
        ),
        "tablet-video" => format!(
            r##"<rect x="14" y="18" width="72" height="56" rx="8" fill="#cfe6f3" stroke="#1b1d1f" stroke-width="5"/><path d="M42 34 l20 12 l-20 12 z" fill="#1b1d1f"/><path d="M40 84 h20" {O}/>"##
        ),
        "visitor-at-door" => format!(
            r##"<rect x="12" y="14" width="40" height="76" rx="4" fill="#e7c9a5" stroke="#1b1d1f" stroke-width="5"/><circle cx="44" cy="54" r="3" fill="#1b1d1f"/>{}"##,
            person(72.0, 50.0, 1.0, "#bcd9b0")
        ),
        "play-together" => format!(
            r##"{}{}<circle cx="50" cy="80" r="9" fill="#f28b82" stroke="#1b1d1f" stroke-width="4"/>"##,
            person(28.0, 44.0, 1.1, "#ffd9a8"),
            person(72.0, 54.0, 0.8, "#cfe6f3")
        ),
        "speech-bubbles" => format!(
            r##"<path d="M10 18 h48 a6 6 0 0 1 6 6 v22 a6 6 0 0 1 -6 6 h-30 l-12 10 v-10 h-6 a6 6 0 0 1 -6 -6 v-22 a6 6 0 0 1 6 -6 z" fill="#cfe6f3" {}/><path d="M42 50 h44 a6 6 0 0 1 6 6 v18 a6 6 0 0 1 -6 6 h-6 v10 l-12 -10 h-26 a6 6 0 0 1 -6 -6 v-18 a6 6 0 0 1 6 -6 z" fill="#ffe680" {}/>"##,
            r##"stroke="#1b1d1f" stroke-width="5" stroke-linejoin="round""##,
            r##"stroke="#1b1d1f" stroke-width="5" stroke-linejoin="round""##
        ),
        "child-on-screen" => format!(
            r##"<rect x="10" y="14" width="80" height="60" rx="6" fill="#cfe6f3" stroke="#1b1d1f" stroke-width="5"/>{}<path d="M36 86 h28" {O}/>"##,
            person(50.0, 44.0, 0.9, "#ffd9a8")
        ),
        "eyes-smiling" => format!(
            r##"<path d="M12 46 q18 -20 36 0 q-18 20 -36 0 z M52 46 q18 -20 36 0 q-18 20 -36 0 z" fill="#ffffff" {O}/><circle cx="30" cy="46" r="6" fill="#1b1d1f"/><circle cx="70" cy="46" r="6" fill="#1b1d1f"/><path d="M34 74 q16 12 32 0" {O}/>"##
        ),
        "house" => format!(
            r##"<path d="M14 48 l36 -32 l36 32" fill="#f6c1a8" {O}/><rect x="22" y="46" width="56" height="42" fill="#f6e3c8" stroke="#1b1d1f" stroke-width="5"/><rect x="42" y="62" width="16" height="26" fill="#b07a4f" stroke="#1b1d1f" stroke-width="4"/>"##
        ),
        "family" => format!(
            "{}{}{}",
            person(24.0, 42.0, 1.0, "#ffd9a8"),
            person(76.0, 42.0, 1.0, "#cfe6f3"),
            person(50.0, 58.0, 0.7, "#bcd9b0")
        ),
        "friends" => format!(
            r##"{}{}<path d="M44 62 h12" {O}/>"##,
            person(30.0, 48.0, 0.95, "#f6d2c9"),
            person(70.0, 48.0, 0.95, "#e8e4f7")
        ),
        "school" => format!(
            r##"<path d="M10 40 l40 -24 l40 24 z" fill="#f6c1a8" {O}/><rect x="18" y="40" width="64" height="48" fill="#ffe680" stroke="#1b1d1f" stroke-width="5"/><rect x="28" y="50" width="12" height="12" fill="#cfe6f3" stroke="#1b1d1f" stroke-width="3"/><rect x="60" y="50" width="12" height="12" fill="#cfe6f3" stroke="#1b1d1f" stroke-width="3"/><rect x="43" y="66" width="14" height="22" fill="#b07a4f" stroke="#1b1d1f" stroke-width="3"/>"##
        ),
        "shield-heart" => format!(
            r##"<path d="M50 10 l34 12 v24 q0 28 -34 44 q-34 -16 -34 -44 v-24 z" fill="#cfe6f3" {O}/><path d="M50 66 l-14 -14 a8 8 0 0 1 14 -10 a8 8 0 0 1 14 10 z" fill="#f28b82" stroke="#1b1d1f" stroke-width="4" stroke-linejoin="round"/>"##
        ),
        "moon-bed" => format!(
            r##"<path d="M62 10 a18 18 0 1 0 18 24 a14 14 0 1 1 -18 -24 z" fill="#ffe680" {O}/><rect x="10" y="60" width="80" height="20" rx="4" fill="#e8e4f7" stroke="#1b1d1f" stroke-width="5"/><rect x="14" y="50" width="22" height="12" rx="5" fill="#ffffff" stroke="#1b1d1f" stroke-width="4"/><path d="M10 80 v10 M90 80 v10" {O}/>"##
        ),
        "sun" => format!(
            r##"<circle cx="50" cy="50" r="20" fill="#ffd84d" stroke="#1b1d1f" stroke-width="5"/><path d="M50 10 v10 M50 80 v10 M10 50 h10 M80 50 h10 M22 22 l7 7 M71 71 l7 7 M78 22 l-7 7 M29 71 l-7 7" {O}/>"##
        ),
        "hug" => format!(
            r##"{}{}<path d="M30 62 q20 12 40 0" {O}/><path d="M50 30 l-6 -6 a4 4 0 0 1 6 -5 a4 4 0 0 1 6 5 z" fill="#f28b82" stroke="#1b1d1f" stroke-width="3"/>"##,
            person(34.0, 50.0, 1.0, "#ffd9a8"),
            person(66.0, 50.0, 1.0, "#cfe6f3")
        ),
        "thumbs-up" => thumb("#ffd9a8", ""),
        "house-good" => format!(
            r##"<path d="M10 46 l40 -34 l40 34" fill="#bfe6c4" {O}/><rect x="20" y="44" width="60" height="46" fill="#e6f5e8" stroke="#1b1d1f" stroke-width="5"/><circle cx="50" cy="66" r="12" fill="#ffd84d" stroke="#1b1d1f" stroke-width="4"/>"##
        ),
        "house-worries" => format!(
            r##"<path d="M10 46 l40 -34 l40 34" fill="#c9cfe0" {O}/><rect x="20" y="44" width="60" height="46" fill="#e9ecf4" stroke="#1b1d1f" stroke-width="5"/><path d="M34 72 q8 -14 16 -4 q8 -14 16 4 q-16 6 -32 0 z" fill="#a9b4cc" stroke="#1b1d1f" stroke-width="4"/>"##
        ),
        "house-dreams" => format!(
            r##"<path d="M10 46 l40 -34 l40 34" fill="#e8e4f7" {O}/><rect x="20" y="44" width="60" height="46" fill="#f5f2fd" stroke="#1b1d1f" stroke-width="5"/><path d="M50 54 l5 10 l11 1 l-8 7 l3 11 l-11 -6 l-11 6 l3 -11 l-8 -7 l11 -1 z" fill="#ffd84d" stroke="#1b1d1f" stroke-width="3" stroke-linejoin="round"/>"##
        ),
        "stop" => r##"<path d="M30 88 q-14 -16 -16 -34 q-1 -8 6 -8 q5 0 8 8 l4 8 v-40 q0 -7 6 -7 q6 0 6 7 v-8 q0 -7 6 -7 q6 0 6 7 v6 q0 -7 6 -7 q6 0 6 7 v8 q0 -6 6 -6 q6 0 6 7 v30 q0 20 -14 36 z" fill="#ffffff" stroke="#ffffff" stroke-width="2" stroke-linejoin="round"/>"##.to_string(),
        "skip" => r##"<path d="M14 50 h60 M54 26 l26 24 l-26 24" fill="none" stroke="#ffffff" stroke-width="12" stroke-linecap="round" stroke-linejoin="round"/>"##.to_string(),
        "done" => r##"<path d="M18 52 l22 22 l44 -46" fill="none" stroke="#ffffff" stroke-width="12" stroke-linecap="round" stroke-linejoin="round"/>"##.to_string(),
        "speaker" => format!(
            r##"<path d="M14 38 h16 l22 -18 v60 l-22 -18 h-16 z" fill="#ffffff" {O}/><path d="M64 36 q10 14 0 28 M74 26 q18 24 0 48" {O}/>"##
        ),
        "undo" => format!(r##"<path d="M30 30 l-16 16 l16 16 M14 46 h44 q24 0 24 22 q0 20 -24 20 h-14" {O}/>"##),
        "eraser" => format!(
            r##"<path d="M40 84 l-24 -24 l40 -40 l32 32 l-32 32 z" fill="#f6d2c9" {O}/><path d="M30 46 l32 32" {O}/><path d="M40 84 h48" {O}/>"##
        ),
        _ => format!(
            r##"<path d="M50 10 l11 24 l26 3 l-19 18 l5 26 l-23 -13 l-23 13 l5 -26 l-19 -18 l26 -3 z" fill="#ffe680" {O}/>"##
        ),
    };
    format!(
        r##"<svg viewBox="0 0 100 100" width="100%" height="100%" aria-hidden="true" focusable="false">{inner}</svg>"##
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_protocol_picture_has_its_own_pictogram() {
        let fallback = super::svg("no-such-picture");
        for activity in &crate::protocol::default_protocol().activities {
            for card in &activity.cards {
                assert_ne!(super::svg(&card.picture), fallback, "{}", card.picture);
            }
        }
    }
}
