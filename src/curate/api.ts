/**
 * The public API of clipcurate. The `curate` CLI and the VS Code extension call only this module.
 */
import path from 'node:path';
import { PACKAGE_ROOT } from '../embed/env.js';
import { providerFor } from '../compute/ort.js';
import { isOfflineSpec, loadClipEncoder, type ClipLoadOptions } from '../embed/encoders/registry.js';
import type { Encoder } from '../embed/encoders/types.js';
import { Catalog } from './catalog.js';
import { offlineEncoderFor, type OfflineEncoderOptions } from './offline.js';

export {
  Catalog,
  CATALOG_FILE,
  WorkspaceBusyError,
  type CatalogSummary,
  type IssueCount,
} from './catalog.js';
export {
  addDataset,
  exactDuplicatesOf,
  type AddDatasetOptions,
  type ExactDuplicates,
  type IngestProgress,
  type IngestReport,
} from './ingest.js';
export { DatasetError, ISSUE_KINDS, type IssueKind } from '../embed/readers/types.js';
export {
  embedCatalog,
  embeddingsDir,
  parseEmbedSlice,
  type EmbedSlice,
  type EmbedOptions,
  type EmbedProgress,
  type EmbedReport,
} from './embed.js';
export { offlineEncoderFor, offlineEncoderDir, OFFLINE_FIT_PAIRS } from './offline.js';
export { EncoderMismatchError } from '../embed/store.js';
export {
  EncoderLoadError,
  isOfflineSpec,
  loadClipEncoder,
  type ClipLoadOptions,
} from '../embed/encoders/registry.js';
export { OFFLINE_ENCODER_NAME } from '../embed/encoders/offline/index.js';
export type { Encoder } from '../embed/encoders/types.js';
export { DEVICES, DeviceUnavailableError, type Device } from '../compute/ort.js';

export { PACKAGE_ROOT } from '../embed/env.js';

export {
  selectSubset,
  compareMethods,
  compareAtBudgets,
  defaultCompareRun,
  saveComparison,
  comparisonFile,
  defaultSelectionName,
  type SelectRequest,
  type CompareRequest,
  type CompareBudgetsRequest,
  type CompareRow,
  type Comparison,
} from './pipeline.js';
export {
  selectPartitioned,
  selectPartitionTask,
  parsePartitionSlice,
  partitionsDir,
  type PartitionedRequest,
  type PartitionTaskReport,
} from './partitionedSelect.js';
export {
  loadSelection,
  listSelections,
  loadScores,
  selectionDir,
  type StoredSelection,
  type Provenance,
} from './selections.js';
export { WorkspaceIndex, type Space } from './searchIndex.js';
export { loadConfig, parseParamPairs, ConfigError, type CurateConfig } from './config.js';
export {
  exportSelection,
  EXPORT_FORMATS,
  ExportInputError,
  type ExportFormat,
  type ExportOptions,
  type ExportReport,
  type SkippedSample,
} from './export/index.js';
export { readSampleImages, type SampleImages } from './export/images.js';
export {
  writeRunReport,
  reportDir,
  COMPARE_METRICS,
  type RunReport,
  type RunReportRequest,
} from './runReport.js';

export const DEFAULT_WORKSPACE = '.curate';

/** The bundled demo dataset: real CIFAR-10 images with web-style noisy captions. */
export const DEMO_DATASET = path.join(PACKAGE_ROOT, 'data', 'demo', 'cifar10-captions-{0000..0001}.tar.gz');

/** Open (creating if needed) a workspace folder and its catalog. Close it when done. */
export function openWorkspace(
  dir: string = DEFAULT_WORKSPACE,
  options: { readOnly?: boolean } = {},
): Promise<Catalog> {
  return Catalog.open(path.resolve(dir), options);
}
export { resetWorkspace, RESET_TARGETS, type ResetTarget } from './reset.js';
export { WorkspaceStateError } from '../embed/store.js';
export { WriteError } from '../io/atomic.js';

export interface ResolveEncoderOptions extends ClipLoadOptions {
  /** Fit the offline encoder again even when the workspace has one. */
  refit?: boolean;
  /** Fit sizes of the offline encoder when it is fitted here (the demo's quicker fit); defaults otherwise. */
  fitOptions?: OfflineEncoderOptions['fitOptions'];
  onStage?: (stage: string) => void;
  /**
   * Only for callers that did not name a model (the demo's `auto`): when the CLIP model cannot be
   * loaded, use the offline encoder and tell this function why. Without it, that is an error.
   */
  fallbackToOffline?: (reason: string) => void;
}

/**
 * The encoder for `--encoder SPEC`: `default`/`offline` is the workspace's offline encoder (fitted on
 * first use); anything else is a CLIP model, and one that cannot be loaded is an `EncoderLoadError`
 * (a named model is never silently replaced by the baseline).
 */
export async function resolveEncoder(
  catalog: Catalog,
  workspace: string,
  spec: string,
  options: ResolveEncoderOptions = {},
): Promise<Encoder> {
  const offline = () =>
    offlineEncoderFor(catalog, workspace, {
      ...(options.device ? { device: options.device } : {}),
      ...(options.refit ? { refit: true } : {}),
      ...(options.fitOptions ? { fitOptions: options.fitOptions } : {}),
      ...(options.onStage ? { onStage: options.onStage } : {}),
    });
  // An explicit device that cannot be used fails here, before any fitting or model loading.
  if (options.device) providerFor(options.device);
  if (isOfflineSpec(spec)) return offline();
  if (!options.fallbackToOffline) return loadClipEncoder(spec, options);
  try {
    return await loadClipEncoder(spec, options);
  } catch (err) {
    options.fallbackToOffline(`cannot load CLIP model '${spec}': ${(err as Error).message}`);
    return offline();
  }
}
export {
  listReviews,
  REVIEW_DECISIONS,
  ReviewInputError,
  reviewsByKey,
  setReview,
  type Review,
  type ReviewDecision,
} from './reviews.js';
export {
  BROWSE_FILTERS,
  BROWSE_SORTS,
  SelectionBrowser,
  type BrowseFilter,
  type BrowseItem,
  type BrowsePage,
  type BrowseQuery,
  type BrowseSort,
} from './browse.js';
export {
  CurationView,
  type CurationViewOptions,
  type ViewItem,
  type ViewMap,
  type ViewPage,
  type ViewSummary,
} from './view.js';
export { embeddingMap, type EmbeddingMap } from './embeddingMap.js';
export { thumbnailsFor, THUMBNAIL_SIZE } from './thumbnails.js';
export { describeMethods, type MethodDescription } from '../select/registry.js';
export {
  listFields,
  parseFilter,
  FILTER_OPS,
  FilterInputError,
  type FieldFilter,
  type FilterField,
  type FilterOp,
} from './fieldFilters.js';
export { SampleTags, changeTags, TagInputError, TAGS_FILE, type TagCount } from './tags.js';
export {
  listSavedViews,
  loadSavedView,
  saveView,
  deleteSavedView,
  SavedViewError,
  VIEWS_FILE,
  type SavedView,
  type SavedViewQuery,
} from './savedViews.js';
export { scoreLegend, type ScoreLegend } from './scoreLegend.js';
export {
  diffSelections,
  GROUND_TRUTH_FIELDS,
  type DiffItem,
  type DiffSide,
  type DiffTruth,
  type SelectionDiff,
} from './diff.js';
export { loadReasons, REASONS_FILE, type SavedReason } from './selections.js';
export {
  parseClassNamesSpec,
  describeClassNamesSpec,
  PROMPT_TEMPLATES,
  type ClassNamesSpec,
} from './classNames.js';
export {
  EVALUATORS,
  EVALUATOR_LABELS,
  defaultEvaluators,
  parseEvaluators,
  evaluateSubset,
  type EvaluatorName,
  type EvaluationSetup,
  type SubsetEvaluation,
} from '../eval/evaluate.js';
export { staticPlan, withinNoise, type SeededMetric, type TrainingPlan } from '../eval/types.js';
export { COMPARE_COLUMNS, columnsOf, marksOf, formatCell } from './compareTable.js';
export { ClusterInputError, makePlan, type ClusterPlan, type ClusterStep } from './cluster/plan.js';
export {
  describeStates,
  slurmStates,
  submitSlurm,
  waitForSlurm,
  writeSlurmScripts,
} from './cluster/slurm.js';
export { writeK8s } from './cluster/k8s.js';
export { listSubmitted, type Submitted } from './cluster/records.js';
