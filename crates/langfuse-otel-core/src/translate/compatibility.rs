//! [`Compatibility`]: server parity or repair, the one switch of the translator's rules
//! (see [Repair mode](crate::translate#repair-mode)).

/// How the translator treats observations the Langfuse server would silently drop, and the
/// conventions it does not read yet (see [Repair mode](crate::translate#repair-mode)). Written
/// `repair` or `server` in flags and configuration files.
///
/// ```
/// use langfuse_otel_core::translate::Compatibility;
///
/// assert_eq!("server".parse::<Compatibility>(), Ok(Compatibility::Server));
/// assert_eq!(Compatibility::default().as_str(), "repair");
/// assert!("strict".parse::<Compatibility>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compatibility {
    /// Keep such observations by repairing the offending field, and read the current GenAI
    /// conventions (documented deviations from the server, see [Repair mode](crate::translate#repair-mode)).
    /// The default: nothing the user sent is lost.
    #[default]
    Repair,
    /// Do exactly what the server does: report the observation as dropped.
    Server,
}

impl Compatibility {
    /// The name used in flags and configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Repair => "repair",
            Compatibility::Server => "server",
        }
    }
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Compatibility {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "repair" => Ok(Compatibility::Repair),
            "server" => Ok(Compatibility::Server),
            other => Err(format!(
                "unknown compatibility '{other}' (expected repair or server)"
            )),
        }
    }
}
