package client

import (
	"encoding/json"
	"time"
)

// The wire types of allot's native API (/api/v1). The server encodes these
// same types, so client and server cannot drift apart.

// Tenant owns consumers and holds quotas.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Plan      string    `json:"plan,omitempty"`
	Parent    string    `json:"parent,omitempty"` // absent: a root
	CreatedAt time.Time `json:"created_at"`
}

// CreateTenantRequest is the body of POST /api/v1/tenants.
type CreateTenantRequest struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Plan   string `json:"plan,omitempty"`
	Parent string `json:"parent,omitempty"` // "": a root
}

// UpdateTenantRequest is the body of PATCH /api/v1/tenants/{tenant}: the
// fields given change; an empty plan means none (the catalog's defaults).
type UpdateTenantRequest struct {
	Name *string `json:"name,omitempty"`
	Plan *string `json:"plan,omitempty"`
	// Parent moves the tenant, with its subtree, under another tenant;
	// "parent": null detaches it (a root). Absent: it stays where it is.
	Parent ParentRef `json:"parent,omitzero"`
}

// ParentRef is a parent given or not: Set false leaves the field out; Set
// with ID "" is JSON null (no parent).
type ParentRef struct {
	Set bool
	ID  string
}

// MoveTo returns a ParentRef that moves a tenant under id ("": detach).
func MoveTo(id string) ParentRef { return ParentRef{Set: true, ID: id} }

// IsZero reports whether the parent is left as it is.
func (p ParentRef) IsZero() bool { return !p.Set }

// MarshalJSON writes the parent's id, or null for none.
func (p ParentRef) MarshalJSON() ([]byte, error) {
	if p.ID == "" {
		return []byte("null"), nil
	}
	return json.Marshal(p.ID)
}

// UnmarshalJSON reads a parent's id or null.
func (p *ParentRef) UnmarshalJSON(b []byte) error {
	p.Set = true
	if string(b) == "null" {
		p.ID = ""
		return nil
	}
	return json.Unmarshal(b, &p.ID)
}

// TenantList answers GET /api/v1/tenants.
type TenantList struct {
	Tenants []Tenant `json:"tenants"`
}

// Range is an inclusive [min, max] interval.
type Range struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Quotas answers GET /api/v1/tenants/{tenant}/quotas.
type Quotas struct {
	Tenant    string          `json:"tenant"`
	Parent    string          `json:"parent,omitempty"`
	Region    string          `json:"region"`
	Resources []ResourceQuota `json:"resources"`
	Limits    []Limit         `json:"limits"`
}

// ResourceQuota is a tenant's use and hard quota of one resource. Source
// says where the hard quota comes from: "override" (set for the tenant),
// "plan" (its plan's) or "catalog" (the catalog's default). Used is what the
// tenant's own consumers use, Tree that plus what every tenant below it
// uses, and Available what the tenant could still claim now: the smallest
// headroom along its path (its own quota, and every quota set for it or an
// ancestor against that level's tree usage).
type ResourceQuota struct {
	Resource    string `json:"resource"`
	Unit        string `json:"unit,omitempty"`
	Used        int64  `json:"used"`
	Tree        int64  `json:"tree"`
	Hard        int64  `json:"hard"`
	Available   int64  `json:"available"`
	Source      string `json:"source,omitempty"`
	Requestable Range  `json:"requestable"`
	OverQuota   bool   `json:"over_quota"`
}

// Tree answers GET /api/v1/tenants/{tenant}/tree: the tenant and every
// tenant below it, depth first.
type Tree struct {
	Tenant string     `json:"tenant"`
	Region string     `json:"region"`
	Nodes  []TreeNode `json:"nodes"`
}

// TreeNode is one tenant of a tree, at Depth below the tree's root (0: the
// root), with its usage: its own and its tree's, against its hard quota
// (Set: the quota is set for it, and so caps its tree).
type TreeNode struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Parent    string         `json:"parent,omitempty"`
	Depth     int            `json:"depth"`
	Resources []TreeResource `json:"resources"`
}

// TreeResource is one resource of a tree node.
type TreeResource struct {
	Resource  string `json:"resource"`
	Used      int64  `json:"used"`
	Tree      int64  `json:"tree"`
	Hard      int64  `json:"hard"`
	Set       bool   `json:"set"`
	OverQuota bool   `json:"over_quota"`
}

// The sources of a hard quota.
const (
	SourceOverride = "override"
	SourcePlan     = "plan"
	SourceCatalog  = "catalog"
)

// NearLimitQuery selects the rows of GET /api/v1/near-limit. Min is a
// utilisation in percent; nil means each tenant's first warning
// threshold. Sort is "utilisation" (the default, highest first), "used"
// (highest first) or "headroom" (least first). Empty filters match all.
type NearLimitQuery struct {
	Min                     *int64
	Service, Resource, Plan string
	Sort                    string
	Offset, Limit           int
}

// NearLimit answers GET /api/v1/near-limit: every tenant and resource at
// or above the utilisation asked for, sorted, one page of them. Total
// counts every row that matched.
type NearLimit struct {
	Rows  []NearLimitRow `json:"rows"`
	Total int            `json:"total"`
}

// NearLimitRow is one tenant's use of one resource. Percent is used/hard
// in whole percent, absent when the hard quota is 0 and something is used
// (unbounded); Headroom is hard - used, negative when over quota;
// FirstThreshold is the tenant's first warning threshold.
type NearLimitRow struct {
	Tenant         string `json:"tenant"`
	Name           string `json:"name"`
	Plan           string `json:"plan,omitempty"`
	Resource       string `json:"resource"`
	Unit           string `json:"unit,omitempty"`
	Used           int64  `json:"used"`
	Hard           int64  `json:"hard"`
	Source         string `json:"source"`
	Percent        *int64 `json:"percent,omitempty"`
	Headroom       int64  `json:"headroom"`
	FirstThreshold int64  `json:"first_threshold"`
	OverQuota      bool   `json:"over_quota"`
}

// Utilisation answers GET /api/v1/utilisation: tenants by their highest
// utilisation, those over a hard quota first. Total counts the tenants
// that matched, before the limit.
type Utilisation struct {
	Tenants []TenantUtilisation `json:"tenants"`
	Total   int                 `json:"total"`
}

// TenantUtilisation is a tenant's most used resource, relative to its hard
// quota, with the resources it is over and its warning thresholds.
type TenantUtilisation struct {
	Tenant     Tenant        `json:"tenant"`
	Worst      ResourceQuota `json:"worst"`
	Over       []string      `json:"over"`
	Thresholds []int64       `json:"thresholds"`
}

// Limit is a tenant's per-object limit of one kind.
type Limit struct {
	Kind  string `json:"kind"`
	Limit string `json:"limit"`
	Min   int64  `json:"min"`
	Max   int64  `json:"max"`
}

// SetQuotaRequest is the body of PUT /api/v1/tenants/{tenant}/quotas/{resource}.
type SetQuotaRequest struct {
	Hard        *int64 `json:"hard"`
	Requestable *Range `json:"requestable,omitempty"`
}

// SetLimitRequest is the body of PUT /api/v1/tenants/{tenant}/limits/{kind}/{limit}.
type SetLimitRequest struct {
	Min *int64 `json:"min"`
	Max *int64 `json:"max"`
}

// PutConsumerRequest is the body of PUT /api/v1/tenants/{tenant}/consumers/{consumer}.
type PutConsumerRequest struct {
	Kind       string           `json:"kind"`
	State      string           `json:"state,omitempty"`
	Attributes map[string]int64 `json:"attributes,omitempty"`
	TTLSeconds int64            `json:"ttl_seconds,omitempty"` // > 0: a reservation
}

// Consumer is one object of a kind, owned by a tenant.
type Consumer struct {
	Tenant     string           `json:"tenant"`
	Consumer   string           `json:"consumer"`
	Kind       string           `json:"kind"`
	State      string           `json:"state,omitempty"`
	Attributes map[string]int64 `json:"attributes"`
	Generation int64            `json:"generation"`
	Footprint  map[string]int64 `json:"footprint"`
	ExpiresAt  *time.Time       `json:"expires_at"`
	CreatedAt  time.Time        `json:"created_at"`
	UpdatedAt  time.Time        `json:"updated_at"`
	// Set on answers to writes: the tenant's usage after the change, whether
	// the consumer was created, and whether this was only a dry run.
	Usage   map[string]int64 `json:"usage,omitempty"`
	Created bool             `json:"created,omitempty"`
	DryRun  bool             `json:"dry_run,omitempty"`
}

// ConsumerList answers GET /api/v1/tenants/{tenant}/consumers.
type ConsumerList struct {
	Consumers  []Consumer `json:"consumers"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// ClaimsRequest is the body of POST /api/v1/claims: all operations or none.
type ClaimsRequest struct {
	Operations []Operation `json:"operations"`
	DryRun     bool        `json:"dry_run,omitempty"`
}

// Operation is one put or delete of a batch.
type Operation struct {
	Op         string           `json:"op"` // "put" or "delete"
	Tenant     string           `json:"tenant"`
	Consumer   string           `json:"consumer"`
	Kind       string           `json:"kind,omitempty"`
	State      string           `json:"state,omitempty"`
	Attributes map[string]int64 `json:"attributes,omitempty"`
	TTLSeconds int64            `json:"ttl_seconds,omitempty"`
	IfMatch    int64            `json:"if_match,omitempty"`
}

// ClaimsResponse answers POST /api/v1/claims, one result per operation.
type ClaimsResponse struct {
	Results []Consumer `json:"results"`
	DryRun  bool       `json:"dry_run,omitempty"`
}

// CreateTokenRequest is the body of POST /api/v1/tokens.
type CreateTokenRequest struct {
	Role   string `json:"role"` // admin, service or tenant
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name"`
}

// Token describes an API token. Secret is set only in the answer that
// creates it: allot keeps a hash and can never show it again.
type Token struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Tenant    string     `json:"tenant,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Secret    string     `json:"token,omitempty"`
}

// TokenList answers GET /api/v1/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// Event is one entry of the ledger.
type Event struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Tenant  string          `json:"tenant,omitempty"`
	Subject string          `json:"subject,omitempty"`
	Actor   string          `json:"actor"`
	Role    string          `json:"role"`
	Reason  string          `json:"reason,omitempty"`
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
}

// EventList answers GET /api/v1/events.
type EventList struct {
	Events []Event `json:"events"`
	Next   int64   `json:"next"` // pass as after= to read on
}

// Problem is an error answer (RFC 9457, application/problem+json) with a
// stable machine-readable Code.
type Problem struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Status     int         `json:"status"`
	Detail     string      `json:"detail,omitempty"`
	Code       string      `json:"code"`
	Violations []Violation `json:"violations,omitempty"`
	Operation  *int        `json:"operation,omitempty"` // the failing operation of a batch
}

// Violation says why one resource or one attribute refused a claim: either
// Resource (with Used, Hard, Requested, Available) or Kind and Attribute
// (with Value, Min, Max) is set.
type Violation struct {
	Tenant    string `json:"tenant,omitempty"` // the level of the tree whose quota refused
	Resource  string `json:"resource,omitempty"`
	Used      int64  `json:"used"`
	Hard      int64  `json:"hard"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
	Kind      string `json:"kind,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	Value     int64  `json:"value"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
}

// Credential is an AK/SK access key pair of a tenant, for clients that sign
// requests the way Huawei Cloud's SDKs do. SecretKey is set only in the
// answer that creates it.
type Credential struct {
	AccessKey string     `json:"access_key"`
	SecretKey string     `json:"secret_key,omitempty"`
	Tenant    string     `json:"tenant"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// CredentialList answers GET /api/v1/tenants/{tenant}/credentials.
type CredentialList struct {
	Credentials []Credential `json:"credentials"`
}

// CreateRequestRequest is the body of POST /api/v1/tenants/{tenant}/requests:
// ask for the hard quota of Resource to become Value.
type CreateRequestRequest struct {
	Resource string `json:"resource"`
	Value    *int64 `json:"value"`
	Reason   string `json:"reason,omitempty"`
}

// Request is a quota change request. Status is pending, approved (and
// applied), denied or superseded (replaced by a request for another value).
type Request struct {
	ID          string        `json:"id"`
	Tenant      string        `json:"tenant"`
	Resource    string        `json:"resource"`
	Value       int64         `json:"value"`
	Reason      string        `json:"reason,omitempty"`
	Status      string        `json:"status"`
	RequestedBy string        `json:"requested_by"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
	History     []RequestStep `json:"history"`
}

// RequestStep is one entry of a request's history.
type RequestStep struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Status  string    `json:"status"`
	Comment string    `json:"comment,omitempty"`
}

// RequestList answers GET …/requests.
type RequestList struct {
	Requests []Request `json:"requests"`
}

// DecideRequest is the body of POST …/requests/{id}/approve and …/deny.
type DecideRequest struct {
	Comment string `json:"comment,omitempty"`
}

// Inventory is the body of PUT /api/v1/tenants/{tenant}/inventory: every
// consumer of Kinds that really exists.
type Inventory struct {
	Kinds     []string            `json:"kinds"`
	Consumers []InventoryConsumer `json:"consumers"`
}

// InventoryConsumer is one consumer that exists.
type InventoryConsumer struct {
	Consumer   string           `json:"consumer"`
	Kind       string           `json:"kind"`
	State      string           `json:"state,omitempty"`
	Attributes map[string]int64 `json:"attributes,omitempty"`
}

// Reconciliation answers an inventory: what changed and the usage after.
type Reconciliation struct {
	Tenant  string           `json:"tenant"`
	Created []string         `json:"created"`
	Updated []string         `json:"updated"`
	Deleted []string         `json:"deleted"`
	Usage   map[string]int64 `json:"usage"`
	DryRun  bool             `json:"dry_run,omitempty"`
}

// OverQuotaList answers GET /api/v1/overquota.
type OverQuotaList struct {
	Tenants []OverQuotaTenant `json:"tenants"`
}

// OverQuotaTenant is a tenant whose usage exceeds some hard quotas.
type OverQuotaTenant struct {
	Tenant    string              `json:"tenant"`
	Resources []OverQuotaResource `json:"resources"`
}

// OverQuotaResource is one resource used beyond its hard quota.
type OverQuotaResource struct {
	Resource string `json:"resource"`
	Used     int64  `json:"used"`
	Hard     int64  `json:"hard"`
	Over     int64  `json:"over"`
	// Level is "tree" when the tenant's tree usage (Used) is above the
	// quota set for its tree; absent for its own usage.
	Level string `json:"level,omitempty"`
}

// UsageAt answers GET /api/v1/tenants/{tenant}/usage?at=: usage and hard
// quotas as they were at At, rebuilt from the ledger.
type UsageAt struct {
	Tenant    string          `json:"tenant"`
	At        time.Time       `json:"at"`
	Resources []UsageResource `json:"resources"`
}

// UsageHistory answers GET /api/v1/tenants/{tenant}/usage/history: usage
// and hard quotas at evenly spaced moments, rebuilt from one pass over the
// ledger.
type UsageHistory struct {
	Tenant string    `json:"tenant"`
	Points []UsageAt `json:"points"`
}

// UsageResource is one resource's usage and hard quota.
type UsageResource struct {
	Resource string `json:"resource"`
	Used     int64  `json:"used"` // the tenant's own consumers'
	Tree     int64  `json:"tree"` // used plus what every tenant below it used then
	Hard     int64  `json:"hard"`
}

// CreateWebhookRequest is the body of POST /api/v1/webhooks. Events lists
// event types ("*" for all); empty means the threshold notifications
// ("quota.threshold"). Tenant limits the subscription to one tenant.
type CreateWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"secret"`
	Tenant string   `json:"tenant,omitempty"`
}

// Webhook is a subscription (its secret is never shown), with how its
// deliveries go: how many wait, when the next attempt is due, and the
// time, HTTP status (0 when the receiver did not answer) and error of the
// latest attempt. Failing says the latest attempt failed.
type Webhook struct {
	ID            string     `json:"id"`
	URL           string     `json:"url"`
	Events        []string   `json:"events"`
	Tenant        string     `json:"tenant,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	Pending       int64      `json:"pending"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	Failing       bool       `json:"failing"`
}

// WebhookList answers GET /api/v1/webhooks.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// Thresholds are a tenant's warning thresholds, percentages of each hard
// quota; null in a PUT returns the tenant to its plan's.
type Thresholds struct {
	Thresholds []int64 `json:"thresholds"`
}
