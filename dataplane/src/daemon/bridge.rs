//! One bridge: a name and its published pipeline.

use crate::flowtable::Pipeline;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// A bridge. Its pipeline is replaced whole on every change.
pub struct Bridge {
    name: String,
    /// Shared with the datapath's workers, which load it at their quiet points.
    pipeline: Arc<ArcSwap<Pipeline>>,
}

impl Bridge {
    /// A bridge with empty tables.
    pub fn new(name: &str) -> Bridge {
        Bridge {
            name: name.to_string(),
            pipeline: Arc::new(ArcSwap::from_pointee(Pipeline::default())),
        }
    }

    /// Bridge name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pipeline version currently published (what a worker would pick up now).
    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.load_full()
    }

    /// The handle workers read the pipeline through.
    pub fn pipeline_handle(&self) -> Arc<ArcSwap<Pipeline>> {
        self.pipeline.clone()
    }

    /// Publish a new version. Callers serialize edits (see the module doc of `daemon`).
    pub fn publish(&self, next: Pipeline) {
        self.pipeline.store(Arc::new(next));
    }
}
