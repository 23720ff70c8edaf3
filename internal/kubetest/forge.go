package kubetest

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Resign returns token with its claims changed by edit and signed again
// with the API server's own key and key id: the token the API server would
// have issued with those claims (one already expired, say).
func (s *Server) Resign(t vaulttest.T, token string, edit func(claims Object)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	var header struct {
		Kid string `json:"kid"`
	}
	claims := Object{}
	if err := decodeSegment(parts[0], &header); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	edit(claims)
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("claims: %v", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.SigningKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", header.Kid))
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return out
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
