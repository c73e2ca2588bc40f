/**
 * The sweep commands: the form for the current notebook, a sweep's view,
 * cancel; "use these values" opens the run form with a trial's values.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';

import { notifyError } from './commands';
import { defaultSweepForm, trialParamTexts } from './sweepForm';
import { SweepsModel } from './sweeps';
import { CommandIDs, IMlkModel, ISweepRequest } from './tokens';
import { SweepFormWidget } from './widgets/SweepFormWidget';
import { SweepViewWidget } from './widgets/SweepViewWidget';

/** Adds the sweep commands; returns the tracker of the sweep views. */
export function addSweepCommands(
  app: JupyterFrontEnd,
  model: IMlkModel,
  sweeps: SweepsModel,
  rendermime: IRenderMimeRegistry | null,
  trans: TranslationBundle
): WidgetTracker<MainAreaWidget<SweepViewWidget>> {
  const { commands, shell } = app;
  const views = new WidgetTracker<MainAreaWidget<SweepViewWidget>>({
    namespace: 'mlk-sweep'
  });
  model.notebookChanged.connect(() =>
    commands.notifyCommandChanged(CommandIDs.newSweep)
  );

  commands.addCommand(CommandIDs.newSweep, {
    label: trans.__('New Parameter Sweep…'),
    caption: trans.__('Search the notebook’s parameters for the best metric'),
    isEnabled: () => model.notebook !== null,
    execute: async () => {
      try {
        await openSweepForm(app, model, sweeps, trans);
      } catch (error) {
        notifyError(error);
      }
    }
  });

  commands.addCommand(CommandIDs.openSweep, {
    label: args => trans.__('Open Sweep %1', String(args.sweepId ?? '')),
    execute: args => {
      const sweepId = String(args.sweepId ?? '');
      if (!sweepId) {
        return;
      }
      const open = views.find(w => w.content.sweepId === sweepId);
      if (open) {
        shell.activateById(open.id);
        return open;
      }
      const content = new SweepViewWidget({
        sweeps,
        sweepId,
        trans,
        rendermime,
        onCancel: id =>
          void commands.execute(CommandIDs.cancelSweep, { sweepId: id }),
        onUseValues: (sweep, trial) =>
          void commands.execute(CommandIDs.runPipeline, {
            path: sweep.notebook,
            params: trialParamTexts(trial)
          }),
        onOpenRun: runId => void commands.execute(CommandIDs.openRun, { runId })
      });
      const widget = new MainAreaWidget({ content });
      widget.id = content.id;
      widget.title.label = content.title.label;
      widget.title.caption = content.title.caption;
      widget.title.icon = content.title.icon;
      widget.title.closable = true;
      shell.add(widget, 'main');
      void views.add(widget);
      shell.activateById(widget.id);
      return widget;
    }
  });

  commands.addCommand(CommandIDs.cancelSweep, {
    label: trans.__('Cancel Sweep'),
    execute: async args => {
      try {
        await sweeps.cancelSweep(String(args.sweepId));
      } catch (error) {
        notifyError(error);
      }
    }
  });
  return views;
}

/** Opens the sweep form of the current notebook, prefilled from its graph. */
async function openSweepForm(
  app: JupyterFrontEnd,
  model: IMlkModel,
  sweeps: SweepsModel,
  trans: TranslationBundle
): Promise<void> {
  await model.refreshGraph();
  const notebook = model.notebook;
  const graph = model.graph;
  if (!notebook || !graph) {
    throw new Error(model.graphError ?? trans.__('The notebook has no graph.'));
  }
  const path = notebook.path;
  const existing = Array.from(app.shell.widgets('main')).find(
    w =>
      w instanceof MainAreaWidget &&
      w.content instanceof SweepFormWidget &&
      w.content.path === path
  );
  if (existing) {
    app.shell.activateById(existing.id);
    return;
  }
  let widget: MainAreaWidget<SweepFormWidget> | null = null;
  const start = async (request: ISweepRequest) => {
    const started = await sweeps.startSweep(model.notebook, request);
    for (const warning of started.warnings ?? []) {
      Notification.warning(warning, { autoClose: 10000 });
    }
    Notification.info(trans.__('Sweep %1 started.', started.id), {
      autoClose: 3000
    });
    await app.commands.execute(CommandIDs.openSweep, { sweepId: started.id });
    widget?.dispose();
  };
  const content = new SweepFormWidget({
    graph,
    path,
    initial: defaultSweepForm(graph),
    trans,
    onStart: async request => {
      try {
        await start(request);
      } catch (error) {
        notifyError(error);
        throw error;
      }
    }
  });
  widget = new MainAreaWidget({ content });
  widget.id = content.id;
  widget.title.label = content.title.label;
  widget.title.icon = content.title.icon;
  widget.title.closable = true;
  app.shell.add(widget, 'main', { mode: 'split-right' });
  app.shell.activateById(widget.id);
}
