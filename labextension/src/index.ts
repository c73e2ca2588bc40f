/**
 * The plugins of jupyter_mlk's JupyterLab panel: the model (with its event
 * subscription and settings), the sidebar, the commands, the sweeps and the
 * notebook servers.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { addCommands, ICommandSettings, notifyError } from './commands';
import { followNotebooks } from './follow';
import { MlkModel } from './model';
import { MlkApi } from './request';
import { ServersModel } from './servers';
import { addSweepCommands } from './sweepCommands';
import { SweepsModel } from './sweeps';
import {
  CommandIDs,
  ILaunchEvent,
  IMlkModel,
  IMlkSidebar,
  IRunStateEvent,
  ISweepStateEvent,
  LAUNCH_EVENT,
  RUN_STATE_EVENT,
  SETTINGS_ID,
  SWEEP_STATE_EVENT
} from './tokens';
import {
  MlkSidebar,
  serversSection,
  sweepsSection
} from './widgets/MlkSidebar';

/** The i18n domain of the panel's strings. */
const DOMAIN = 'jupyter_mlk';

/** The run history and graph state, kept fresh by the server's events. */
const modelPlugin: JupyterFrontEndPlugin<IMlkModel> = {
  id: SETTINGS_ID,
  description: 'The jupyter_mlk model: graph, runs, live run states.',
  autoStart: true,
  provides: IMlkModel,
  optional: [ISettingRegistry],
  activate: (app: JupyterFrontEnd, registry: ISettingRegistry | null) => {
    const model = new MlkModel(new MlkApi(app.serviceManager.serverSettings));
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === RUN_STATE_EVENT) {
        model.handleRunEvent(event as unknown as IRunStateEvent);
      }
    });
    if (registry) {
      void registry.load(SETTINGS_ID).then(settings => {
        const apply = () =>
          model.configure({
            runsLimit: settings.get('runsLimit').composite as number,
            pollInterval: settings.get('pollInterval').composite as number,
            refreshDelay: settings.get('refreshDelay').composite as number
          });
        apply();
        settings.changed.connect(apply);
      });
    }
    void app.restored.then(() => model.refreshRuns()).catch(() => undefined);
    return model;
  }
};

/** The left sidebar following the current notebook. */
const panelPlugin: JupyterFrontEndPlugin<IMlkSidebar> = {
  id: 'jupyter-mlk:panel',
  description: 'The jupyter_mlk sidebar: steps, cell tags, runs.',
  autoStart: true,
  provides: IMlkSidebar,
  requires: [IMlkModel, INotebookTracker],
  optional: [ITranslator, ILayoutRestorer, ILabShell, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    tracker: INotebookTracker,
    translator: ITranslator | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    palette: ICommandPalette | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const sidebar = new MlkSidebar({
      model,
      trans,
      commands: app.commands,
      translator: translator ?? nullTranslator
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
    followNotebooks(tracker, model);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open Pipeline Panel'),
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({
      command: CommandIDs.openPanel,
      category: trans.__('Pipeline')
    });
    return sidebar;
  }
};

/** Run, compile, refresh and the run views, in the command palette. */
const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:commands',
  description: 'The jupyter_mlk commands and run views.',
  autoStart: true,
  requires: [IMlkModel],
  optional: [ITranslator, ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    let current: ICommandSettings = {
      openRunView: true,
      compileSave: true,
      compileImage: ''
    };
    if (registry) {
      void registry
        .load(SETTINGS_ID)
        .then(settings => {
          const read = () => {
            current = {
              openRunView: settings.get('openRunView').composite as boolean,
              compileSave: settings.get('compileSave').composite as boolean,
              compileImage: settings.get('compileImage').composite as string
            };
          };
          read();
          settings.changed.connect(read);
        })
        .catch(notifyError);
    }
    const runViews = addCommands(app, model, trans, () => current);
    void restorer?.restore(runViews, {
      command: CommandIDs.openRun,
      args: widget => ({ runId: widget.content.runId }),
      name: widget => widget.content.runId
    });
    const category = trans.__('Pipeline');
    for (const command of [
      CommandIDs.runPipeline,
      CommandIDs.compilePipeline,
      CommandIDs.refreshGraph
    ]) {
      palette?.addItem({ command, category });
    }
  }
};

/** Reads the fallback poll interval from the settings, now and on change. */
function followPollInterval(
  registry: ISettingRegistry | null,
  apply: (seconds: number) => void
): void {
  void registry?.load(SETTINGS_ID).then(settings => {
    const read = () => apply(settings.get('pollInterval').composite as number);
    read();
    settings.changed.connect(read);
  });
}

/** Parameter sweeps: the form, the sweep views, the Sweeps section. */
const sweepsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:sweeps',
  description: 'Parameter sweeps of the current notebook, with live trials.',
  autoStart: true,
  requires: [IMlkModel, IMlkSidebar],
  optional: [
    IRenderMimeRegistry,
    ITranslator,
    ICommandPalette,
    ISettingRegistry,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    sidebar: IMlkSidebar,
    rendermime: IRenderMimeRegistry | null,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const sweeps = new SweepsModel(model.api);
    followPollInterval(registry, pollInterval =>
      sweeps.configure({ pollInterval })
    );
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === SWEEP_STATE_EVENT) {
        sweeps.handleSweepEvent(event as unknown as ISweepStateEvent);
      }
    });
    const views = addSweepCommands(app, model, sweeps, rendermime, trans);
    void restorer?.restore(views, {
      command: CommandIDs.openSweep,
      args: widget => ({ sweepId: widget.content.sweepId }),
      name: widget => widget.content.sweepId
    });
    sidebar.addSection(
      sweepsSection({
        sweeps,
        model,
        trans,
        onNew: () => void app.commands.execute(CommandIDs.newSweep),
        onOpen: sweepId =>
          void app.commands.execute(CommandIDs.openSweep, { sweepId })
      }),
      3
    );
    palette?.addItem({
      command: CommandIDs.newSweep,
      category: trans.__('Pipeline')
    });
    void app.restored.then(() => sweeps.refreshSweeps()).catch(() => undefined);
  }
};

/** The launcher's notebook servers: list, launch with progress, stop. */
const serversPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:servers',
  description: 'Launch, follow and stop notebook servers (local or pods).',
  autoStart: true,
  requires: [IMlkModel, IMlkSidebar],
  optional: [ITranslator, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    sidebar: IMlkSidebar,
    translator: ITranslator | null,
    registry: ISettingRegistry | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const servers = new ServersModel(model.api);
    followPollInterval(registry, pollInterval =>
      servers.configure({ pollInterval })
    );
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === LAUNCH_EVENT) {
        servers.handleLaunchEvent(event as unknown as ILaunchEvent);
      }
    });
    app.commands.addCommand(CommandIDs.refreshServers, {
      label: trans.__('Refresh Notebook Servers'),
      execute: () => servers.refresh().catch(notifyError)
    });
    sidebar.addSection(serversSection({ servers, trans }), 2);
    void app.restored.then(() => servers.refresh()).catch(() => undefined);
  }
};

export default [
  modelPlugin,
  panelPlugin,
  commandsPlugin,
  sweepsPlugin,
  serversPlugin
];
