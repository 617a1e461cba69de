//! The dashboard's files, built into the binary: its page, script and style sheet, and
//! the uPlot chart library they draw with (vendored under `assets/dashboard/uplot/`
//! with its licence), so the page works with no network beyond this server.

/// A static file under `/dashboard/` (served to anyone: none holds a figure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Script,
    Style,
    ChartLibrary,
    ChartStyle,
    ChartLicense,
}

impl Asset {
    const ALL: [Asset; 5] = [
        Asset::Script,
        Asset::Style,
        Asset::ChartLibrary,
        Asset::ChartStyle,
        Asset::ChartLicense,
    ];

    /// The asset at `/dashboard/NAME`.
    pub fn named(name: &str) -> Option<Asset> {
        Asset::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Its name under `/dashboard/`.
    pub fn name(self) -> &'static str {
        match self {
            Asset::Script => "dashboard.js",
            Asset::Style => "dashboard.css",
            Asset::ChartLibrary => "uPlot.iife.min.js",
            Asset::ChartStyle => "uPlot.min.css",
            Asset::ChartLicense => "uPlot.LICENSE.txt",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Asset::Script | Asset::ChartLibrary => "text/javascript; charset=utf-8",
            Asset::Style | Asset::ChartStyle => "text/css; charset=utf-8",
            Asset::ChartLicense => "text/plain; charset=utf-8",
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            Asset::Script => include_str!("../../assets/dashboard/dashboard.js"),
            Asset::Style => include_str!("../../assets/dashboard/dashboard.css"),
            Asset::ChartLibrary => include_str!("../../assets/dashboard/uplot/uPlot.iife.min.js"),
            Asset::ChartStyle => include_str!("../../assets/dashboard/uplot/uPlot.min.css"),
            Asset::ChartLicense => include_str!("../../assets/dashboard/uplot/LICENSE"),
        }
    }
}

/// The dashboard page (it loads the assets above and opens `/dashboard/events`).
pub const PAGE: &str = include_str!("../../assets/dashboard/index.html");

/// The sign-in page, with `{message}` where a wrong key is reported.
pub const SIGN_IN: &str = include_str!("../../assets/dashboard/sign-in.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_by_its_name_and_the_page_links_them() {
        for asset in Asset::ALL {
            assert_eq!(Asset::named(asset.name()), Some(asset));
            assert!(!asset.body().is_empty());
        }
        assert_eq!(Asset::named("index.html"), None);
        for asset in [
            Asset::Script,
            Asset::Style,
            Asset::ChartLibrary,
            Asset::ChartStyle,
        ] {
            assert!(
                PAGE.contains(&format!("/dashboard/{}", asset.name())),
                "{asset:?}"
            );
        }
    }
}
