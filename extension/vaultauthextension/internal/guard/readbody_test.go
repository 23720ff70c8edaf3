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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// A sender cannot slip deep OTLP/JSON past the scan by how the bytes
// arrive (one per read, so every bracket and escape straddles a read) or
// by how it names the content type: the receiver's read of the body
// fails before it ends, so nothing is decoded, and the sender is told 400.
func TestDeepJSONRefusedWhateverTheReads(t *testing.T) {
	g := newTestGuard(t)
	decoded := 0
	h, err := g.WrapHTTP(context.Background(), otlpLikeReceiver(func([]byte) { decoded++ }))
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
	assert.Zero(t, decoded, "deep JSON reached the decoder")
}

// otlpLikeReceiver reads a body as the OTLP receiver does (io.ReadAll,
// then decode) and answers a read error with the HTTP status of its gRPC
// status, as the OTLP receiver does.
func otlpLikeReceiver(decode func([]byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			code := http.StatusBadRequest
			if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
			return
		}
		decode(body)
	})
}

// What a sender may hide nesting behind, in bodies long enough for the
// 64-byte fast path: brackets inside strings (never counted), escaped
// quotes that do not end a string (`\"`) and escaped backslashes that let
// one end (`\\"`), and a document that stays one level under the limit
// for 1 MiB. Each request is counted: refused ones never reach the
// decoder, accepted ones reach it once, byte for byte.
func TestNestingHiddenInStringsAndAtTheLimit(t *testing.T) {
	g := newTestGuard(t) // max_json_depth 256
	var decoded [][]byte
	h, err := g.WrapHTTP(context.Background(), otlpLikeReceiver(func(b []byte) { decoded = append(decoded, b) }))
	require.NoError(t, err)
	brackets := strings.Repeat("[{", 500)
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"brackets only inside strings", `{"a":["` + brackets + `","\"` + brackets + `"]}`, http.StatusOK},
		{"an escaped quote does not end the string", `{"a":"\"` + brackets + `"}`, http.StatusOK},
		{"an escaped backslash lets the quote end it", `{"a":"x\\"` + strings.Repeat("[", 300) + `"]`, http.StatusBadRequest},
		{"nesting after a long string", `{"a":"` + strings.Repeat("x", 5000) + `","b":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, http.StatusBadRequest},
		{"one level under the limit for 1 MiB", strings.Repeat("[", 255) + strings.Repeat("[]", 512<<10) + strings.Repeat("]", 255), http.StatusOK},
		{"one level over, after 1 MiB under", strings.Repeat("[", 255) + strings.Repeat("[]", 512<<10) + "[[" + strings.Repeat("]", 257), http.StatusBadRequest},
	} {
		decoded = nil
		r := httptest.NewRequest(http.MethodPost, "/v1/traces", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.want, w.Code, tc.name)
		if tc.want == http.StatusOK {
			require.Len(t, decoded, 1, tc.name)
			assert.Equal(t, len(tc.body), len(decoded[0]), tc.name)
		} else {
			assert.Empty(t, decoded, "%s: reached the decoder", tc.name)
		}
	}
}
