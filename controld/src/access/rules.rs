//! Token `accessRules` (Cloudflare's shape): evaluated in order, the first rule that matches
//! decides; when none matches, access is allowed.
//!
//! `ip.geoip.country` needs a GeoIP database, which controld does not have: such a rule is
//! accepted (tokens stay portable), but when evaluation reaches it without an earlier rule
//! having decided, access is refused: a rule that cannot be evaluated never lets a request
//! through by being skipped.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_RULES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessRule {
    #[serde(rename = "type")]
    pub kind: RuleKind,
    pub action: RuleAction,
    /// CIDRs (or single addresses) for `ip.src`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Vec<String>>,
    /// ISO 3166-1 alpha-2 codes for `ip.geoip.country`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub enum RuleKind {
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "ip.src")]
    IpSrc,
    #[serde(rename = "ip.geoip.country")]
    Country,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Block,
}

/// What the rules say about a request.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Allowed,
    /// Refused, with a sentence naming the rule.
    Refused(String),
}

/// Checks the rules' shape; the error names the offending field (`accessRules.1.ip.0`).
pub fn validate(rules: &[AccessRule]) -> Result<(), (String, String)> {
    if rules.len() > MAX_RULES {
        return Err((
            "accessRules".into(),
            format!("at most {MAX_RULES} rules, got {}", rules.len()),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        match rule.kind {
            RuleKind::Any => {}
            RuleKind::IpSrc => {
                let ips = rule.ip.as_deref().unwrap_or_default();
                if ips.is_empty() {
                    return Err((
                        format!("accessRules.{i}.ip"),
                        "ip.src needs a list of CIDRs".into(),
                    ));
                }
                for (j, ip) in ips.iter().enumerate() {
                    if parse_net(ip).is_none() {
                        return Err((
                            format!("accessRules.{i}.ip.{j}"),
                            format!("{ip:?} is not an IP address or CIDR"),
                        ));
                    }
                }
            }
            RuleKind::Country => {
                let countries = rule.country.as_deref().unwrap_or_default();
                if countries.is_empty() {
                    return Err((
                        format!("accessRules.{i}.country"),
                        "ip.geoip.country needs a list of country codes".into(),
                    ));
                }
                for (j, c) in countries.iter().enumerate() {
                    if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())) {
                        return Err((
                            format!("accessRules.{i}.country.{j}"),
                            format!("{c:?} is not a two-letter country code"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Evaluates the rules for a client address (`None` when unknown: no `ip.src` rule matches).
pub fn evaluate(rules: &[AccessRule], client: Option<IpAddr>) -> Verdict {
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    let client = client.map(|ip| ip.to_canonical());
    for (i, rule) in rules.iter().enumerate() {
        let matched = match rule.kind {
            RuleKind::Any => true,
            RuleKind::IpSrc => client.is_some_and(|ip| {
                rule.ip
                    .iter()
                    .flatten()
                    .filter_map(|n| parse_net(n))
                    .any(|net| net.contains(&ip))
            }),
            RuleKind::Country => {
                return Verdict::Refused(format!(
                    "access rule {i} (ip.geoip.country) cannot be evaluated: this server has no \
                     GeoIP database"
                ));
            }
        };
        if matched {
            return match rule.action {
                RuleAction::Allow => Verdict::Allowed,
                RuleAction::Block => {
                    Verdict::Refused(format!("access rule {i} blocks this request"))
                }
            };
        }
    }
    Verdict::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, action: RuleAction, ip: &[&str]) -> AccessRule {
        AccessRule {
            kind,
            action,
            ip: (!ip.is_empty()).then(|| ip.iter().map(|s| s.to_string()).collect()),
            country: (kind == RuleKind::Country).then(|| vec!["US".to_string()]),
        }
    }

    #[test]
    fn first_match_wins_and_no_match_allows() {
        use RuleAction::*;
        use RuleKind::*;
        let rules = [
            rule(IpSrc, Allow, &["10.0.0.0/8", "192.0.2.7"]),
            rule(Any, Block, &[]),
        ];
        let ip = |s: &str| Some(s.parse().unwrap());
        assert_eq!(evaluate(&rules, ip("10.1.2.3")), Verdict::Allowed);
        assert_eq!(evaluate(&rules, ip("::ffff:10.1.2.3")), Verdict::Allowed);
        assert_eq!(evaluate(&rules, ip("192.0.2.7")), Verdict::Allowed);
        assert!(matches!(
            evaluate(&rules, ip("192.0.2.8")),
            Verdict::Refused(_)
        ));
        assert!(matches!(evaluate(&rules, None), Verdict::Refused(_)));
        let block_one = [rule(IpSrc, Block, &["127.0.0.1/32"])];
        assert!(matches!(
            evaluate(&block_one, ip("127.0.0.1")),
            Verdict::Refused(_)
        ));
        assert_eq!(evaluate(&block_one, ip("127.0.0.2")), Verdict::Allowed);
        assert_eq!(evaluate(&[], ip("127.0.0.1")), Verdict::Allowed);
        // Country rules are refused only when evaluation reaches them.
        let country = [
            rule(IpSrc, Allow, &["127.0.0.0/8"]),
            rule(Country, Allow, &[]),
        ];
        assert_eq!(evaluate(&country, ip("127.0.0.1")), Verdict::Allowed);
        assert!(matches!(
            evaluate(&country, ip("10.0.0.1")),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn validation_names_the_field() {
        use RuleAction::*;
        use RuleKind::*;
        assert!(validate(&[rule(IpSrc, Allow, &["::1/128"]), rule(Country, Block, &[])]).is_ok());
        assert_eq!(
            validate(&[rule(IpSrc, Allow, &[])]).unwrap_err().0,
            "accessRules.0.ip"
        );
        assert_eq!(
            validate(&[rule(Any, Allow, &[]), rule(IpSrc, Allow, &["10.0.0.0/33"])])
                .unwrap_err()
                .0,
            "accessRules.1.ip.0"
        );
        let six = vec![rule(Any, Allow, &[]); 6];
        assert_eq!(validate(&six).unwrap_err().0, "accessRules");
    }
}
