package entity

// Problem is one broken rule found in the inventory.
type Problem struct {
	// Rule names the invariant (see store.Invariants).
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// Entities are the names of the entities involved.
	Entities []string `json:"entities,omitempty"`
	// Values are the numbers and addresses that collide.
	Values map[string]any `json:"values,omitempty"`
}
