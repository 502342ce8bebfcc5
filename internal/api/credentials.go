package api

import (
	"net/http"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

// Access key pairs (AK/SK) sign requests the way Huawei Cloud's SDKs do.
// They are tokens of the tenant role whose secret is sealed rather than
// hashed, because verifying a signature needs the secret itself.

func (a *API) createCredential(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	tenant := r.PathValue("tenant")
	if r.ContentLength != 0 {
		var none struct{}
		if err := decode(r, &none); err != nil {
			return err
		}
	}
	ak, sk := auth.NewAccessKey()
	tok := &quota.Token{Name: ak, Role: quota.RoleTenant, Tenant: tenant, Sealed: a.sealer.Seal([]byte(sk), ak)}
	_, dry, err := a.do(w, r, who, "", &quota.PutToken{Token: tok})
	if err != nil {
		return err
	}
	tok.CreatedAt = a.now()
	c := wireCredential(tok)
	if !dry { // a dry run stores nothing, so it hands out no secret
		c.SecretKey = sk
	}
	respond(w, http.StatusCreated, c)
	return nil
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	tenant := r.PathValue("tenant")
	if _, err := a.engine.View(r.Context(), tenant); err != nil {
		return err
	}
	ts, err := a.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := client.CredentialList{Credentials: []client.Credential{}}
	for _, t := range ts {
		if t.Sealed != nil && t.Tenant == tenant {
			out.Credentials = append(out.Credentials, wireCredential(t))
		}
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) revokeCredential(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	ak := r.PathValue("access_key")
	t, err := a.store.Token(r.Context(), ak)
	if err == nil && (t.Sealed == nil || t.Tenant != r.PathValue("tenant")) {
		err = quota.Errorf(quota.CodeNotFound, "access key %q not found", truncate(ak, 40))
	}
	if err != nil {
		return err
	}
	if _, _, err := a.do(w, r, who, "", &quota.RevokeToken{Name: ak}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func wireCredential(t *quota.Token) client.Credential {
	return client.Credential{AccessKey: t.Name, Tenant: t.Tenant, CreatedAt: t.CreatedAt.UTC(), RevokedAt: t.RevokedAt}
}
