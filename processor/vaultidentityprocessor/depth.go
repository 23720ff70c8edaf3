package vaultidentityprocessor

import "go.opentelemetry.io/collector/pdata/pcommon"

// protobufRecursionLimit mirrors the OTLP protobuf decoder of the Collector
// (pdata's internal proto.RecursionLimit, which the gateway's receiver and
// the OTLP exporters' peers use): it refuses a request in which AnyValue,
// ArrayValue, KeyValueList and KeyValue messages nest this deep, counting
// from 0 at an attribute's KeyValue or at a log body's AnyValue. OTLP/JSON
// has no such limit, so data an agent takes over JSON could make the
// gateway refuse, for good, the whole batch the agent merged it into with
// every other sender's data. TestDepthLimitIsTheDecoders pins the numbers
// against the decoder itself.
const protobufRecursionLimit = 100

// Decoder depths at which values are entered.
const (
	attributeDepth = 1 // an attribute's value: inside its KeyValue
	bodyDepth      = 0 // a log record's body
)

// exportable says whether v, entered by the decoder at depth d, stays
// within protobufRecursionLimit. It only descends into maps and slices.
func exportable(v pcommon.Value, d int) bool {
	if d >= protobufRecursionLimit {
		return false
	}
	switch v.Type() {
	case pcommon.ValueTypeSlice: // ArrayValue at d+1, its values at d+2
		if d+1 >= protobufRecursionLimit {
			return false
		}
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if !exportable(s.At(i), d+2) {
				return false
			}
		}
	case pcommon.ValueTypeMap: // KeyValueList at d+1, each KeyValue at d+2, its value at d+3
		m := v.Map()
		if d+1 >= protobufRecursionLimit || (m.Len() > 0 && d+2 >= protobufRecursionLimit) {
			return false
		}
		for _, x := range m.All() {
			if !exportable(x, d+3) {
				return false
			}
		}
	}
	return true
}
