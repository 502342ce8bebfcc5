package bench_test

import (
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

// The in-memory work of one claim, as the committer does it for every
// change of a batch: normalize the spec, derive the footprint, take the
// delta against the old one, check it against the quotas, apply it.

var running = quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256}}

func BenchmarkNormalize(b *testing.B) {
	cat := quota.DefaultCatalog()
	for b.Loop() {
		if _, _, err := cat.Normalize(running); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFootprintOf(b *testing.B) {
	cat := quota.DefaultCatalog()
	k, attrs, err := cat.Normalize(running)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := quota.FootprintOf(k, "running", attrs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClaimEvaluation(b *testing.B) {
	cat := quota.DefaultCatalog()
	hard := int64(1 << 40)
	tenant := &quota.Tenant{ID: "acme", Quotas: map[string]quota.QuotaOverride{"compute.live_memory_mb": {Hard: &hard}}}
	k, attrs, err := cat.Normalize(running)
	if err != nil {
		b.Fatal(err)
	}
	stopped, err := quota.FootprintOf(k, "stopped", attrs)
	if err != nil {
		b.Fatal(err)
	}
	used := map[string]int64{"compute.instances": 5, "compute.live_instances": 2, "compute.live_memory_mb": 512, "compute.live_vcpus": 2}
	for b.Loop() {
		if err := cat.CheckLimits(tenant, k, attrs); err != nil {
			b.Fatal(err)
		}
		fp, err := quota.FootprintOf(k, "running", attrs)
		if err != nil {
			b.Fatal(err)
		}
		delta := quota.Delta(stopped, fp)
		if err := cat.CheckQuotas(tenant, used, delta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckQuotasRefusal(b *testing.B) {
	cat := quota.DefaultCatalog()
	tenant := &quota.Tenant{ID: "acme"}
	used := map[string]int64{"compute.instances": 10}
	delta := quota.Footprint{"compute.instances": 1}
	for b.Loop() {
		if err := cat.CheckQuotas(tenant, used, delta); err == nil {
			b.Fatal("admitted past the quota")
		}
	}
}
