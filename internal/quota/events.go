package quota

// EventType says what a ledger event records.
type EventType string

// The event types: the one list. Replay, the webhooks' subscriptions and
// the dashboard's filters all take them from here.
const (
	EventConsumerPut      EventType = "consumer.put"
	EventConsumerDelete   EventType = "consumer.delete"
	EventConsumerExpired  EventType = "consumer.expired"
	EventQuotaSet         EventType = "quota.set"
	EventThreshold        EventType = "quota.threshold" // a warning threshold was crossed
	EventLimitSet         EventType = "limit.set"
	EventThresholdsSet    EventType = "thresholds.set"
	EventTenantCreate     EventType = "tenant.create"
	EventTenantUpdate     EventType = "tenant.update"
	EventTenantDelete     EventType = "tenant.delete"
	EventTenantMove       EventType = "tenant.move"   // a tenant (and its subtree) under another parent
	EventSubtreeUsage     EventType = "usage.subtree" // what a tenant's descendants use, once per batch that changed it
	EventTokenCreate      EventType = "token.create"
	EventTokenRevoke      EventType = "token.revoke"
	EventRequestCreate    EventType = "request.create"
	EventRequestSupersede EventType = "request.supersede"
	EventRequestApprove   EventType = "request.approve"
	EventRequestDeny      EventType = "request.deny"
	EventWebhookCreate    EventType = "webhook.create"
	EventWebhookDelete    EventType = "webhook.delete"
)

// EventTypes lists every event type, in the order documentation shows them.
var EventTypes = []EventType{
	EventConsumerPut, EventConsumerDelete, EventConsumerExpired,
	EventQuotaSet, EventThreshold, EventLimitSet, EventThresholdsSet,
	EventTenantCreate, EventTenantUpdate, EventTenantDelete, EventTenantMove, EventSubtreeUsage,
	EventTokenCreate, EventTokenRevoke,
	EventRequestCreate, EventRequestSupersede, EventRequestApprove, EventRequestDeny,
	EventWebhookCreate, EventWebhookDelete,
}

// Known reports whether t is an event type allot writes.
func (t EventType) Known() bool {
	for _, k := range EventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Audit reports whether events of this type answer "who changed what, and
// when": they are kept for longer than the rest (consumer changes and
// threshold crossings, which are many and derived from the claims).
func (t EventType) Audit() bool {
	switch t {
	case EventConsumerPut, EventConsumerDelete, EventConsumerExpired, EventThreshold, EventSubtreeUsage:
		return false
	}
	return true
}

// AuditTypes lists the audit event types.
func AuditTypes() []EventType {
	var out []EventType
	for _, t := range EventTypes {
		if t.Audit() {
			out = append(out, t)
		}
	}
	return out
}
