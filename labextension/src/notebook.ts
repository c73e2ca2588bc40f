/**
 * Adapts a JupyterLab notebook panel to what the model needs: its path and
 * content, the active cell and its tags, and marks on a step's cells.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { ICellInfo, INotebookSource, JSONValue } from './tokens';

/** The CSS class a cell of the selected step gets. */
export const STEP_CELL_CLASS = 'jp-Mlk-stepCell';

/** A notebook panel seen as the model's notebook source. */
export class NotebookSource implements INotebookSource {
  constructor(readonly panel: NotebookPanel) {
    const notebook = panel.content;
    notebook.activeCellChanged.connect(this._emitCell, this);
    panel.model?.contentChanged.connect(this._onContentChanged, this);
    panel.context.fileChanged.connect(this._emitContent, this);
    panel.disposed.connect(() => Signal.clearData(this));
  }

  get path(): string {
    return this.panel.context.path;
  }

  get isDirty(): boolean {
    return this.panel.context.model.dirty;
  }

  /** The active cell moved, or its tags changed. */
  get cellChanged(): ISignal<this, void> {
    return this._cellChanged;
  }

  /** The content changed (an edit, or the file was reloaded or saved). */
  get contentChanged(): ISignal<this, void> {
    return this._contentChanged;
  }

  content(): JSONValue {
    return this.panel.context.model.toJSON() as unknown as JSONValue;
  }

  async save(): Promise<void> {
    await this.panel.context.save();
  }

  activeCell(): ICellInfo | null {
    const notebook = this.panel.content;
    const cell = notebook.activeCell;
    if (!cell) {
      return null;
    }
    const tags = cell.model.getMetadata('tags');
    return {
      index: notebook.activeCellIndex,
      id: cell.model.id,
      cellType: cell.model.type,
      tags: Array.isArray(tags) ? tags.map(String) : []
    };
  }

  setCellTags(index: number, tags: string[]): void {
    const cell = this.panel.content.widgets[index];
    if (!cell) {
      return;
    }
    if (tags.length) {
      cell.model.setMetadata('tags', tags);
    } else {
      cell.model.deleteMetadata('tags');
    }
  }

  highlightCells(indices: number[]): void {
    const wanted = new Set(indices);
    this.panel.content.widgets.forEach((cell, index) => {
      cell.toggleClass(STEP_CELL_CLASS, wanted.has(index));
    });
  }

  revealCell(index: number): void {
    const notebook = this.panel.content;
    const cell = notebook.widgets[index];
    if (!cell) {
      return;
    }
    notebook.activeCellIndex = index;
    notebook.mode = 'command';
    void notebook.scrollToCell(cell, 'center');
  }

  private _emitCell(): void {
    this._cellChanged.emit();
  }

  private _emitContent(): void {
    this._contentChanged.emit();
  }

  private _onContentChanged(): void {
    // Tag edits change cell metadata: the active cell's form must follow.
    this._cellChanged.emit();
    this._contentChanged.emit();
  }

  private _cellChanged = new Signal<this, void>(this);
  private _contentChanged = new Signal<this, void>(this);
}
