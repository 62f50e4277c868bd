//! Numeric ids of every aggregate, and the owner tag written into router comments.

id_type!(/// Tenant (operator) id.
    TenantId, "tenant");
id_type!(/// Router id.
    RouterId, "router");
id_type!(/// Hotspot subscriber id.
    SubscriberId, "subscriber");
id_type!(/// Device id.
    DeviceId, "device");
id_type!(/// Voucher id.
    VoucherId, "voucher");
id_type!(/// Plan id.
    PlanId, "plan");
id_type!(/// ISP customer id.
    CustomerId, "customer");
id_type!(/// ISP service id.
    ServiceId, "service");
id_type!(/// Ledger entry id.
    LedgerEntryId, "ledger");
id_type!(/// Notice id.
    NoticeId, "notice");

/// The comment prefix that marks router objects this engine created.
/// Reconciliation only ever touches objects whose comment starts with it.
pub const OWNER_COMMENT_PREFIX: &str = "isp:";

/// What an object on a router was created for; encoded in its comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerTag {
    /// A hotspot subscriber's object.
    Subscriber(SubscriberId),
    /// A voucher's hotspot user.
    Voucher(VoucherId),
    /// An ISP service's secret, address-list entry or queue.
    Service(ServiceId),
}

impl OwnerTag {
    /// The router comment: `isp:sub:42`, `isp:voucher:7`, `isp:svc:3`.
    pub fn comment(&self) -> String {
        match self {
            OwnerTag::Subscriber(id) => format!("{OWNER_COMMENT_PREFIX}sub:{id}"),
            OwnerTag::Voucher(id) => format!("{OWNER_COMMENT_PREFIX}voucher:{id}"),
            OwnerTag::Service(id) => format!("{OWNER_COMMENT_PREFIX}svc:{id}"),
        }
    }

    /// Reads a comment back; `None` for objects we do not own.
    pub fn from_comment(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix(OWNER_COMMENT_PREFIX)?;
        let (kind, id) = rest.split_once(':')?;
        let id: i64 = id.split_whitespace().next()?.parse().ok()?;
        match kind {
            "sub" => Some(OwnerTag::Subscriber(SubscriberId(id))),
            "voucher" => Some(OwnerTag::Voucher(VoucherId(id))),
            "svc" => Some(OwnerTag::Service(ServiceId(id))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tags_round_trip() {
        for t in [
            OwnerTag::Subscriber(SubscriberId(42)),
            OwnerTag::Voucher(VoucherId(7)),
            OwnerTag::Service(ServiceId(3)),
        ] {
            assert_eq!(OwnerTag::from_comment(&t.comment()), Some(t));
        }
        assert_eq!(OwnerTag::from_comment("made by hand"), None);
        assert_eq!(OwnerTag::from_comment("isp:other:1"), None);
    }
}
