package invfile

import "encoding/json"

// jsonMarshal encodes YAML-decoded data (maps with string keys) as JSON.
func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
