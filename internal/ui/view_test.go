package ui

import "testing"

func TestChartAxis(t *testing.T) {
	for _, tc := range []struct {
		highest, top int64
		labels       string
	}{
		{0, 2, "2 1"}, {1, 2, "2 1"}, {3, 4, "4 2"}, {5, 10, "10 5"}, {16, 20, "20 10"}, {40, 50, "50 25"},
		{2048, 5000, "5,000 2,500"}, {819200, 1_000_000, "1M 500k"}, {1_500_000, 2_000_000, "2M 1M"},
	} {
		top := niceTop(tc.highest)
		if got := short(top) + " " + short(top/2); top != tc.top || got != tc.labels {
			t.Errorf("highest %d: top %d labelled %q, want %d labelled %q", tc.highest, top, got, tc.top, tc.labels)
		}
	}
}
