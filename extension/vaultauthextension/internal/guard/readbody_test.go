package guard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The receiver behind the guard gets the body byte for byte, whatever its
// size, however it is read, and whether Content-Length is known, exact or
// smaller than the body (a decompressed body).
func TestGuardPassesTheWholeBody(t *testing.T) {
	g := newTestGuard(t)
	var got []byte
	h, err := g.WrapHTTP(context.Background(), http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
	}))
	require.NoError(t, err)
	for _, size := range []int{0, 1, 511, 512, 513, 32<<10 - 1, 32 << 10, 32<<10 + 1, 100<<10 + 3, 3 << 20} {
		body := bytes.Repeat([]byte(`{"a":["x\"]"]},`), size/15+1)[:size]
		for name, length := range map[string]int64{"unknown": -1, "exact": int64(size), "smaller": int64(size / 3)} {
			for _, oneByte := range []bool{false, true} {
				var rd io.Reader = bytes.NewReader(body)
				if oneByte {
					rd = iotest.OneByteReader(rd)
				}
				r := httptest.NewRequest(http.MethodPost, "/v1/traces", rd)
				r.ContentLength = length
				r.Header.Set("Content-Type", "application/json")
				got = nil
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				assert.Equal(t, http.StatusOK, w.Code, "size %d, length %s", size, name)
				assert.True(t, bytes.Equal(body, got), "size %d, length %s, one byte reads %v: the receiver got %d bytes", size, name, oneByte, len(got))
			}
		}
	}
}

// A pooled buffer fits the request that takes it: at least what it asked
// for, less than four times that, whatever buffers earlier requests left.
func TestPooledBodiesFitTheirRequest(t *testing.T) {
	for _, left := range []int{32 << 10, 100 << 10, 1<<20 + 512, 3 << 20, 6 << 20} {
		putBody(make([]byte, 0, left))
	}
	for _, size := range []int{513, 32 << 10, 32<<10 + 1, 70 << 10, 1<<20 + 512, 4 << 20, 5 << 20} {
		b := getBody(size)
		assert.Zero(t, len(b))
		assert.GreaterOrEqual(t, cap(b), size, "asked %d", size)
		assert.Less(t, cap(b), 4*max(size, 32<<10), "asked %d", size)
		putBody(b)
	}
}

// A sender cannot slip deep OTLP/JSON past the scan by how the bytes
// arrive (one per read, so every bracket and escape straddles a read) or
// by how it names the content type: the receiver is never called.
func TestDeepJSONRefusedWhateverTheReads(t *testing.T) {
	g := newTestGuard(t)
	calls := 0
	h, err := g.WrapHTTP(context.Background(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	require.NoError(t, err)
	deep := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":` +
		strings.Repeat(`{"arrayValue":{"values":[`, 100) + `{"stringValue":"x\"]}]}"}`)
	for _, ct := range []string{"application/json", "Application/JSON", " application/json; charset=utf-8"} {
		for _, oneByte := range []bool{false, true} {
			var rd io.Reader = bytes.NewReader(deep)
			if oneByte {
				rd = iotest.OneByteReader(rd)
			}
			r := httptest.NewRequest(http.MethodPost, "/v1/traces", rd)
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, http.StatusBadRequest, w.Code, "%q, one byte reads %v", ct, oneByte)
		}
	}
	assert.Zero(t, calls, "deep JSON reached the receiver")
}
