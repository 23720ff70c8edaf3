package source

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// parkedExport is one export as the exporter would have sent it, without
// the credential: a replay adds the tenant's credential of the moment.
type parkedExport struct {
	transport string      // parkGRPC or parkHTTP
	target    string      // the gRPC connection's target, or the HTTP scheme://host
	method    string      // the gRPC full method, or the HTTP method
	url       string      // HTTP: the request URL
	header    http.Header // HTTP: the exporter's headers, the credential's removed
	body      []byte      // the encoded request, as sent (compressed, for HTTP, if it was)
}

const (
	parkGRPC = "grpc"
	parkHTTP = "http"
)

const parkFormat = 1

// encode writes e as: format, then length-prefixed transport, target,
// method, url, the number of header values and each name and value, then
// the body to the end.
func (e *parkedExport) encode() []byte {
	size := 16 + len(e.transport) + len(e.target) + len(e.method) + len(e.url) + len(e.body)
	for k, vs := range e.header {
		for _, v := range vs {
			size += 2*binary.MaxVarintLen32 + len(k) + len(v)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, parkFormat)
	for _, s := range []string{e.transport, e.target, e.method, e.url} {
		b = appendString(b, s)
	}
	n := 0
	for _, vs := range e.header {
		n += len(vs)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range e.header {
		for _, v := range vs {
			b = appendString(appendString(b, k), v)
		}
	}
	return append(b, e.body...)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errParkedFormat = errors.New("parked export: not in a format this version reads")

func decodeParked(b []byte) (*parkedExport, error) {
	if len(b) == 0 || b[0] != parkFormat {
		return nil, errParkedFormat
	}
	r := parkReader{b: b[1:]}
	e := &parkedExport{transport: r.string(), target: r.string(), method: r.string(), url: r.string()}
	if n := r.uvarint(); n > 0 && r.err == nil {
		e.header = http.Header{}
		for range min(n, uint64(len(r.b))) {
			k, v := r.string(), r.string()
			e.header[k] = append(e.header[k], v)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	e.body = r.b
	return e, nil
}

type parkReader struct {
	b   []byte
	err error
}

func (r *parkReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errParkedFormat
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *parkReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errParkedFormat
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// parkStore keeps each tenant's parked exports in order, in a storage
// client: a storage extension's (file_storage: across restarts) or
// memory's. Keys: "tenants" (the tenants with exports parked), "idx/<t>"
// (the first and next sequence numbers), "exp/<t>/<n>" (an export).
// Each tenant's calls are serialized by its caller; the tenant list has
// its own lock.
type parkStore struct {
	client storage.Client

	mu      sync.Mutex
	tenants map[string]bool
}

func newParkStore(client storage.Client) *parkStore {
	return &parkStore{client: client, tenants: map[string]bool{}}
}

func expKey(tenant string, seq uint64) string {
	return "exp/" + tenant + "/" + strconv.FormatUint(seq, 10)
}
func idxKey(tenant string) string { return "idx/" + tenant }

// parkIndex is where a tenant's exports are: [head, tail), and their size.
type parkIndex struct {
	Head, Tail uint64
	Bytes      int64
}

func (x parkIndex) len() uint64 { return x.Tail - x.Head }

// load returns every tenant with exports parked, and where they are.
func (s *parkStore) load(ctx context.Context) (map[string]parkIndex, error) {
	raw, err := s.client.Get(ctx, "tenants")
	if err != nil || raw == nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, fmt.Errorf("parked tenants: %w", err)
	}
	out := map[string]parkIndex{}
	for _, name := range names {
		raw, err := s.client.Get(ctx, idxKey(name))
		if err != nil {
			return nil, err
		}
		var x parkIndex
		if raw != nil && json.Unmarshal(raw, &x) == nil && x.len() > 0 {
			out[name] = x
			s.tenants[name] = true
		}
	}
	return out, nil
}

// push appends one export to the tenant's: x is its index before, the
// returned one after.
func (s *parkStore) push(ctx context.Context, tenant string, x parkIndex, export []byte) (parkIndex, error) {
	if x.len() == 0 {
		if err := s.listTenant(ctx, tenant, true); err != nil {
			return x, err
		}
	}
	next := parkIndex{Head: x.Head, Tail: x.Tail + 1, Bytes: x.Bytes + int64(len(export))}
	idx, _ := json.Marshal(next)
	err := s.client.Batch(ctx, storage.SetOperation(expKey(tenant, x.Tail), export), storage.SetOperation(idxKey(tenant), idx))
	if err != nil {
		return x, err
	}
	return next, nil
}

// first reads the tenant's oldest export.
func (s *parkStore) first(ctx context.Context, tenant string, x parkIndex) ([]byte, error) {
	return s.client.Get(ctx, expKey(tenant, x.Head))
}

// pop removes the tenant's oldest export (of size n bytes).
func (s *parkStore) pop(ctx context.Context, tenant string, x parkIndex, n int) (parkIndex, error) {
	next := parkIndex{Head: x.Head + 1, Tail: x.Tail, Bytes: max(0, x.Bytes-int64(n))}
	if next.len() == 0 {
		next = parkIndex{Head: x.Tail, Tail: x.Tail}
	}
	idx, _ := json.Marshal(next)
	if err := s.client.Batch(ctx, storage.DeleteOperation(expKey(tenant, x.Head)), storage.SetOperation(idxKey(tenant), idx)); err != nil {
		return x, err
	}
	if next.len() == 0 {
		return next, s.listTenant(ctx, tenant, false)
	}
	return next, nil
}

// listTenant adds the tenant to (or removes it from) the list of tenants
// with exports parked.
func (s *parkStore) listTenant(ctx context.Context, tenant string, parked bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tenants[tenant] == parked {
		return nil
	}
	if parked {
		s.tenants[tenant] = true
	} else {
		delete(s.tenants, tenant)
	}
	names := make([]string, 0, len(s.tenants))
	for name := range s.tenants {
		names = append(names, name)
	}
	raw, _ := json.Marshal(names)
	return s.client.Set(ctx, "tenants", raw)
}

func (s *parkStore) close(ctx context.Context) error { return s.client.Close(ctx) }

// memoryStorage is a storage.Client in memory: the park without a
// storage extension.
type memoryStorage struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ storage.Client = (*memoryStorage)(nil)

func newMemoryStorage() *memoryStorage { return &memoryStorage{m: map[string][]byte{}} }

func (m *memoryStorage) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[key], nil
}

func (m *memoryStorage) Set(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = value
	return nil
}

func (m *memoryStorage) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

func (m *memoryStorage) Batch(_ context.Context, ops ...*storage.Operation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = m.m[op.Key]
		case storage.Set:
			m.m[op.Key] = op.Value
		case storage.Delete:
			delete(m.m, op.Key)
		}
	}
	return nil
}

func (m *memoryStorage) Close(context.Context) error { return nil }

// exportsIn says how many parked exports memory holds (for the shutdown warning).
func (m *memoryStorage) exportsIn() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.m {
		if strings.HasPrefix(k, "exp/") {
			n++
		}
	}
	return n
}
