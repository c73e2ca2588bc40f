/**
 * Keeps the model on the notebook the user works in: the current notebook of
 * the tracker, its active cell, and its content as it is edited.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { NotebookSource } from './notebook';
import { IMlkModel } from './tokens';

/** Makes `model` follow the tracker's current notebook from now on. */
export function followNotebooks(
  tracker: INotebookTracker,
  model: IMlkModel
): void {
  const sources = new WeakMap<NotebookPanel, NotebookSource>();
  const sourceFor = (panel: NotebookPanel): NotebookSource => {
    let source = sources.get(panel);
    if (!source) {
      source = new NotebookSource(panel);
      source.cellChanged.connect(() => {
        if (model.notebook === source) {
          model.updateActiveCell();
        }
      });
      source.contentChanged.connect(() => {
        if (model.notebook === source) {
          model.scheduleRefresh();
        }
      });
      panel.disposed.connect(() => {
        if (model.notebook === source) {
          model.setNotebook(null);
        }
      });
      sources.set(panel, source);
    }
    return source;
  };
  const follow = async (panel: NotebookPanel | null) => {
    if (!panel) {
      model.setNotebook(null);
      return;
    }
    await panel.context.ready;
    if (tracker.currentWidget === panel && !panel.isDisposed) {
      model.setNotebook(sourceFor(panel));
    }
  };
  tracker.currentChanged.connect((_, panel) => void follow(panel));
  void follow(tracker.currentWidget);
}
