package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// The park sits in the exporter's path twice: for gRPC exporters as a
// client middleware (the exporter lists this instance in `middlewares`, as
// well as in `auth`), an interceptor that sees each export's message; for
// HTTP exporters in the authenticator's RoundTripper, which sees the body.

// GRPCClientOptions are the dial options of a gRPC exporter that lists the
// instance in its middlewares: with tenants, the park's interceptor; none
// otherwise (extensionmiddleware.GRPCClient).
func GRPCClientOptions(src Source) []grpc.DialOption {
	t, ok := src.(*Tenants)
	if !ok {
		return nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(t.interceptExport)}
}

// interceptExport sends one gRPC export, or parks it.
func (t *Tenants) interceptExport(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if isReplay(ctx) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	t.park.sawGRPC(cc)
	tp, cred, ok := t.parkOf(ctx)
	if !ok { // no tenant, or none that can be: the credentials refuse it
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	build := func() (*parkedExport, error) {
		body, err := encoding.GetCodecV2("proto").Marshal(req)
		if err != nil {
			return nil, err
		}
		defer body.Free()
		return &parkedExport{transport: parkGRPC, target: cc.Target(), method: method, body: body.Materialize()}, nil
	}
	send := func() (sendOutcome, error) {
		err := invoker(ctx, method, req, reply, cc, opts...)
		return grpcOutcome(err), err
	}
	return tp.export(ctx, cred, build, send)
}

// grpcOutcome reads a gRPC call's error as OTLP exporters do.
func grpcOutcome(err error) sendOutcome {
	switch status.Code(err) {
	case codes.OK:
		return outcomeSent
	case codes.Unauthenticated, codes.PermissionDenied:
		return outcomeRejected
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.DataLoss:
		return outcomeUnavailable
	}
	return outcomeFailed // Canceled (the exporter stops), InvalidArgument, ...: the exporter's
}

// httpOutcome reads an HTTP response status as OTLP exporters do.
func httpOutcome(code int) sendOutcome {
	switch {
	case code >= 200 && code < 300:
		return outcomeSent
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return outcomeRejected
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return outcomeUnavailable
	}
	return outcomeFailed
}

// roundTripParked sends one HTTP export of a tenants client, or parks it.
func (rt *roundTripper) roundTripParked(req *http.Request, t *Tenants) (*http.Response, error) {
	target := req.URL.Scheme + "://" + req.URL.Host
	t.park.sawHTTP(target, rt.base)
	tp, cred, ok := t.parkOf(req.Context())
	if !ok {
		closeBody(req)
		return nil, rt.refuse(req)
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	build := func() (*parkedExport, error) {
		header := req.Header.Clone()
		if cred != nil {
			header.Del(cred.header)
		}
		return &parkedExport{transport: parkHTTP, target: target, method: req.Method, url: req.URL.String(), header: header, body: body}, nil
	}
	var resp *http.Response
	send := func() (sendOutcome, error) {
		out := *req
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.Header = withCredential(req.Header, cred)
		var err error
		if resp, err = rt.base.RoundTrip(&out); err != nil {
			if req.Context().Err() != nil {
				return outcomeFailed, err
			}
			return outcomeUnavailable, err
		}
		o := httpOutcome(resp.StatusCode)
		if o == outcomeRejected || o == outcomeUnavailable {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			resp = nil
		}
		return o, nil
	}
	if err := tp.export(req.Context(), cred, build, send); err != nil {
		return nil, err
	}
	if resp == nil { // parked: the exporter is done with it
		return parkedResponse(req), nil
	}
	return resp, nil
}

// refuse is the error of an export whose context names no usable tenant.
func (rt *roundTripper) refuse(req *http.Request) error {
	_, err := rt.source.Credential(req.Context())
	if err == nil {
		err = errors.New("no tenant")
	}
	return err
}

// readBody reads a request's body (a fresh copy when the request can make one).
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer closeBody(req)
	return io.ReadAll(req.Body)
}

// withCredential is h with the credential set, in a map of its own.
func withCredential(h http.Header, cred *Value) http.Header {
	out := make(http.Header, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	if cred != nil {
		out[cred.header] = cred.values
	}
	return out
}

// parkedResponse tells the exporter its export is done: a success with an
// empty OTLP response (no partial success) in the request's encoding.
func parkedResponse(req *http.Request) *http.Response {
	ct := req.Header.Get("Content-Type")
	body := ""
	if strings.Contains(ct, "json") {
		body = "{}"
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}

// resend sends a parked export through the transport its exporter used,
// with the tenant's credential of the moment.
func (p *park) resend(ctx context.Context, tenant string, cred *Value, e *parkedExport) (sendOutcome, error) {
	ctx, cancel := context.WithTimeout(replayContext(ctx, tenant), replayTimeout)
	defer cancel()
	switch e.transport {
	case parkGRPC:
		v, ok := p.conns.Load(e.target)
		if !ok {
			return outcomeNoTransport, nil
		}
		raw := rawMessage(e.body)
		err := v.(*grpc.ClientConn).Invoke(ctx, e.method, &raw, new(rawMessage), grpc.ForceCodecV2(rawCodec{}))
		return grpcOutcome(err), err
	case parkHTTP:
		v, ok := p.bases.Load(e.target)
		if !ok {
			return outcomeNoTransport, nil
		}
		req, err := http.NewRequestWithContext(ctx, e.method, e.url, bytes.NewReader(e.body))
		if err != nil {
			return outcomeFailed, err
		}
		req.Header = withCredential(e.header, cred)
		resp, err := v.(http.RoundTripper).RoundTrip(req)
		if err != nil {
			return outcomeUnavailable, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if o := httpOutcome(resp.StatusCode); o != outcomeSent {
			return o, errors.New("the backend answered " + resp.Status)
		}
		return outcomeSent, nil
	}
	return outcomeFailed, errParkedFormat
}

// rawMessage is an encoded message, sent and received as it is.
type rawMessage []byte

// rawCodec sends a parked export's bytes as they were encoded, and ignores
// the answer (an OTLP export response: partial success at most).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*rawMessage))}, nil
}
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }
