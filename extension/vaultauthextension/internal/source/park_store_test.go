package source

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A parked export keeps everything a replay needs, and nothing else.
func TestParkedExportEncoding(t *testing.T) {
	e := &parkedExport{transport: parkHTTP, target: "https://ingest.lightstep.com", method: http.MethodPost,
		url: "https://ingest.lightstep.com/traces/otlp/v0.9", body: []byte{0, 1, 2, 0xff},
		header: http.Header{"Content-Type": {"application/x-protobuf"}, "Content-Encoding": {"gzip"}, "X-Two": {"a", "b"}}}
	got, err := decodeParked(e.encode())
	require.NoError(t, err)
	assert.Equal(t, e, got)
	for _, bad := range [][]byte{nil, {0}, {parkFormat}, {parkFormat, 200}, e.encode()[:5]} {
		_, err := decodeParked(bad)
		assert.ErrorIs(t, err, errParkedFormat, "%v", bad)
	}
}
