/**
 * The left sidebar: a toolbar (run, compile, refresh) over three sections
 * hosting React bodies: the steps, the active cell's tags, the runs.
 */
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import {
  CommandToolbarButton,
  ReactWidget,
  SidePanel
} from '@jupyterlab/ui-components';
import React from 'react';

import { CellTagEditor } from '../components/CellTagEditor';
import {
  DeploymentList,
  IDeploymentActions
} from '../components/DeploymentList';
import { RunList } from '../components/RunList';
import { ServerList } from '../components/ServerList';
import { SweepList } from '../components/SweepList';
import { StepList } from '../components/StepList';
import { useSignals } from '../components/useSignal';
import { baseName } from '../format';
import { pipelineIcon } from '../icons';
import { notifyError } from '../commands';
import { SERVER_MISSING_MESSAGE } from '../request';
import { DeploymentsModel } from '../deployments';
import { buildLaunchRequest, ServersModel } from '../servers';
import { SweepsModel } from '../sweeps';
import { CommandIDs, IMlkModel, IMlkSidebar } from '../tokens';

/** The sidebar of jupyter_mlk. */
export class MlkSidebar extends SidePanel implements IMlkSidebar {
  constructor(options: MlkSidebar.IOptions) {
    super({ translator: options.translator });
    const { model, trans, commands } = options;
    this.id = 'jp-mlk-sidebar';
    this.addClass('jp-Mlk-sidebar');
    this.title.icon = pipelineIcon;
    this.title.caption = trans.__('Pipeline');

    const header = ReactWidget.create(<Header model={model} trans={trans} />);
    header.addClass('jp-Mlk-header');
    this.header.addWidget(header);
    const buttons: [string, string][] = [
      [CommandIDs.runPipeline, trans.__('Run')],
      [CommandIDs.compilePipeline, trans.__('Compile')],
      [CommandIDs.refreshGraph, '']
    ];
    for (const [id, label] of buttons) {
      this.toolbar.addItem(
        id,
        new CommandToolbarButton({
          commands,
          id,
          label,
          args: { toolbar: true }
        })
      );
    }

    this.addWidget(
      section(
        trans.__('Steps'),
        'jp-Mlk-stepsSection',
        <StepList
          model={model}
          trans={trans}
          serverMissingMessage={trans.__(SERVER_MISSING_MESSAGE)}
        />
      )
    );
    this.addWidget(
      section(
        trans.__('Cell tags'),
        'jp-Mlk-cellSection',
        <CellTagEditor model={model} trans={trans} />
      )
    );
    this.addWidget(
      section(
        trans.__('Runs'),
        'jp-Mlk-runsSection',
        <RunList
          model={model}
          trans={trans}
          onOpen={runId => void commands.execute(CommandIDs.openRun, { runId })}
        />
      )
    );
    // The steps need the most room; the runs list scrolls.
    this._sizes = [5, 4, 3];
    (this.content as AccordionPanel).setRelativeSizes(this._sizes);
  }

  /** Adds a section below the others, with its share of the height. */
  addSection(widget: Widget, size: number): void {
    widget.addClass('jp-Mlk-section');
    this.addWidget(widget);
    this._sizes = [...this._sizes, size];
    (this.content as AccordionPanel).setRelativeSizes(this._sizes);
  }

  private _sizes: number[];
}

export namespace MlkSidebar {
  export interface IOptions {
    model: IMlkModel;
    trans: TranslationBundle;
    commands: CommandRegistry;
    translator?: ITranslator;
  }
}

/** A section of the sidebar hosting a React body. */
export function section(
  label: string,
  className: string,
  body: JSX.Element
): ReactWidget {
  const widget = ReactWidget.create(body);
  widget.addClass('jp-Mlk-section');
  widget.addClass(className);
  widget.title.label = label;
  return widget;
}

function Header(props: {
  model: IMlkModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  useSignals(model.notebookChanged, model.graphChanged);
  const graph = model.graph;
  const path = model.notebook?.path;
  return (
    <div className="jp-Mlk-headerBody">
      <div className="jp-Mlk-title">{trans.__('Pipeline')}</div>
      <div className="jp-Mlk-subtitle" title={path}>
        {path ? baseName(path) : trans.__('No notebook')}
        {graph && (
          <span className="jp-Mlk-counts">
            {trans._n('%1 step', '%1 steps', graph.steps.length)}
            {graph.errors.length > 0 &&
              ` · ${trans._n('%1 error', '%1 errors', graph.errors.length)}`}
            {graph.warnings.length > 0 &&
              ` · ${trans._n('%1 warning', '%1 warnings', graph.warnings.length)}`}
          </span>
        )}
      </div>
    </div>
  );
}

/** The Sweeps section: a button for the form, the workspace's sweeps. */
export function sweepsSection(options: {
  sweeps: SweepsModel;
  model: IMlkModel;
  trans: TranslationBundle;
  onNew: () => void;
  onOpen: (sweepId: string) => void;
}): ReactWidget {
  return section(
    options.trans.__('Sweeps'),
    'jp-Mlk-sweepsSection',
    <SweepList {...options} />
  );
}

/**
 * The Notebook servers section. A refused launch or stop shows the server's
 * message as a notification and keeps the form open.
 */
export function serversSection(options: {
  servers: ServersModel;
  trans: TranslationBundle;
}): ReactWidget {
  const { servers, trans } = options;
  return section(
    trans.__('Notebook servers'),
    'jp-Mlk-serversSection',
    <ServerList
      servers={servers}
      trans={trans}
      onLaunch={async form => {
        const { request } = buildLaunchRequest(form);
        if (!request) {
          return false;
        }
        try {
          await servers.launch(request);
          return true;
        } catch (error) {
          notifyError(error);
          return false;
        }
      }}
      onStop={name => void servers.stop(name).catch(notifyError)}
    />
  );
}

/**
 * The Deployments section. No event tells of a deployment's changes, so the
 * list is fetched every few seconds while the section is shown, and at once
 * when it shows again.
 */
export class DeploymentsSection extends ReactWidget {
  constructor(
    private readonly _options: {
      deployments: DeploymentsModel;
      trans: TranslationBundle;
      onRefresh: () => void;
    } & IDeploymentActions
  ) {
    super();
    this.addClass('jp-Mlk-section');
    this.addClass('jp-Mlk-deploymentsSection');
    this.title.label = _options.trans.__('Deployments');
  }

  dispose(): void {
    this._options.deployments.setVisible(false);
    super.dispose();
  }

  protected render(): JSX.Element {
    return <DeploymentList {...this._options} />;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._options.deployments.setVisible(true);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._options.deployments.setVisible(this.isVisible);
  }

  protected onBeforeHide(msg: Message): void {
    super.onBeforeHide(msg);
    this._options.deployments.setVisible(false);
  }

  protected onBeforeDetach(msg: Message): void {
    this._options.deployments.setVisible(false);
    super.onBeforeDetach(msg);
  }
}
