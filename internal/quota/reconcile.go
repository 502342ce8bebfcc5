package quota

// ReconcileResult is what a reconciliation changed.
type ReconcileResult struct {
	Created, Updated, Deleted []string
}

// InventoryItem is one consumer that really exists.
type InventoryItem struct {
	ID   string
	Spec Spec
	kind *Kind
}
