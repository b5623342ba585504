package pipeline

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the pipeline's Prometheus metrics on a private registry.
// One Metrics may be shared by the workers of one process.
type Metrics struct {
	reg *prometheus.Registry

	Received   prometheus.Counter
	Committed  prometheus.Counter
	Duplicates prometheus.Counter
	Rejected   *prometheus.CounterVec
	BatchSize  prometheus.Histogram
	CommitTime prometheus.Histogram
	Sealed     prometheus.Counter
	CloseTime  prometheus.Histogram
	Signed     prometheus.Counter
	SignTime   prometheus.Histogram
	Witnessed  *prometheus.CounterVec
	Alerts     *prometheus.CounterVec
	// CatchUps counts the times the ingester's consumer was starved and
	// the ingester read the stream directly; CatchUpRead counts the
	// messages it read that way.
	CatchUps    prometheus.Counter
	CatchUpRead prometheus.Counter
	// DeliveryLag is, for each ingester batch, the time from JetStream
	// storing its first message to the ingester taking it; BatchWait from
	// then to the start of the batch's commit (the batch wait and the
	// previous commit); ReceiptDelay from the end of the commit to its
	// commit receipts being published. With CommitTime they break an
	// event's time to committed down.
	DeliveryLag  prometheus.Histogram
	BatchWait    prometheus.Histogram
	ReceiptDelay prometheus.Histogram
	// Halted is 1 for each stream a worker's log halted after an integrity
	// check failed (securelog.StreamHaltedError), by stream and kind.
	Halted *prometheus.GaugeVec
	// Scans counts the sealer's and signer's safety-net store scans, by
	// worker; ScanFound counts the streams a scan found work in that no
	// announcement had reported (a lost announcement).
	Scans     *prometheus.CounterVec
	ScanFound *prometheus.CounterVec
}

// NewMetrics creates the metrics on a new private registry.
func NewMetrics() *Metrics {
	lat := prometheus.ExponentialBuckets(0.0001, 2.5, 14)
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_events_received_total",
			Help: "Events taken from JetStream or request/reply by the ingester."}),
		Committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_events_committed_total",
			Help: "Events chained into the store and fsynced."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_events_duplicate_total",
			Help: "Redelivered JetStream messages skipped because they were already applied."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "securelog_pipeline_events_rejected_total",
			Help: "Events sent to the dead-letter subject, by error code."}, []string{"code"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_batch_size",
			Help: "Events per committed store batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		CommitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_commit_duration_seconds",
			Help: "Duration of one store batch commit (chain + fsync).", Buckets: lat}),
		Sealed: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_segments_sealed_total",
			Help: "Segments closed by the ingester."}),
		CloseTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_close_duration_seconds",
			Help: "Duration of one segment close.", Buckets: lat}),
		Signed: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_segments_signed_total",
			Help: "Segments signed by the signer."}),
		SignTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_sign_duration_seconds",
			Help: "Duration of signing one segment (store round trips included).", Buckets: lat}),
		Witnessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "securelog_pipeline_witness_submissions_total",
			Help: "Witness submissions by outcome (accepted, refused, error)."}, []string{"outcome"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "securelog_pipeline_alerts_total",
			Help: "Alerts raised, by kind."}, []string{"kind"}),
		CatchUps: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_ingester_catchups_total",
			Help: "Times the ingester's consumer delivered nothing while the stream held newer messages, so the ingester read them directly."}),
		CatchUpRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "securelog_pipeline_ingester_catchup_messages_total",
			Help: "Messages the ingester read directly from the stream while its consumer was starved."}),
		DeliveryLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_delivery_lag_seconds",
			Help: "Per ingester batch: from JetStream storing its first message to the ingester taking it.", Buckets: lat}),
		BatchWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_batch_wait_seconds",
			Help: "Per ingester batch: from the ingester taking its first message to the start of its commit.", Buckets: lat}),
		ReceiptDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "securelog_pipeline_receipt_delay_seconds",
			Help: "Per ingester batch: from the end of its commit to its commit receipts being published.", Buckets: lat}),
		Halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "securelog_pipeline_stream_halted",
			Help: "1 while a stream is halted because an integrity check failed (appends or signing refused until an operator repairs the store and restarts)."},
			[]string{"stream", "kind"}),
		Scans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "securelog_pipeline_store_scans_total",
			Help: "Safety-net store scans for work no announcement reported, by worker (sealer, signer)."}, []string{"worker"}),
		ScanFound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "securelog_pipeline_store_scan_found_total",
			Help: "Streams in which a safety-net store scan found work no announcement had reported, by worker."}, []string{"worker"}),
	}
	m.reg.MustRegister(m.Scans, m.ScanFound, m.CatchUps, m.CatchUpRead, m.DeliveryLag, m.BatchWait, m.ReceiptDelay, m.Received, m.Committed, m.Duplicates, m.Rejected, m.BatchSize, m.CommitTime,
		m.Sealed, m.CloseTime, m.Signed, m.SignTime, m.Witnessed, m.Alerts, m.Halted)
	return m
}

// Registry returns the private registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
