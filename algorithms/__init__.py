"""marl-lab learners; importing this package registers them by name.

Two families, one package each: :mod:`marl.algorithms.value_decomposition`
(off-policy, recurrent Q-learning with mixers) and
:mod:`marl.algorithms.policy_gradient` (PPO with policy models); and
:mod:`marl.algorithms.mansa`, a learner built from two of them.
"""

from marl.algorithms import mansa
from marl.algorithms import policy_gradient as pg
from marl.algorithms import value_decomposition as vd
from marl.registry import register_algorithm

register_algorithm("iql", vd.make_iql, vd.IQLOptions)
register_algorithm("vdn", vd.make_vdn, vd.VDNOptions)
register_algorithm("qmix", vd.make_qmix, vd.QMIXOptions)
register_algorithm("qplex", vd.make_qplex, vd.QPLEXOptions)
register_algorithm("cw_qmix", vd.make_cw_qmix, vd.CWQMIXOptions)
register_algorithm("ow_qmix", vd.make_ow_qmix, vd.OWQMIXOptions)
register_algorithm("qtran", vd.make_qtran, vd.QTRANOptions)
register_algorithm("momix", vd.make_momix, vd.MOMIXOptions)
register_algorithm("qmix_outer_loop", vd.make_qmix_outer_loop, vd.OuterLoopQMIXOptions)
register_algorithm("mt_vdn", vd.make_mt_vdn, vd.MTVDNOptions)
register_algorithm("mt_qmix", vd.make_mt_qmix, vd.MTQMIXOptions)
register_algorithm("ippo", pg.make_ippo, pg.IPPOOptions)
register_algorithm("mappo", pg.make_mappo, pg.MAPPOOptions)
register_algorithm("mat", pg.make_mat, pg.MATOptions)
register_algorithm("cmat", pg.make_cmat, pg.CMATOptions)
register_algorithm("mansa", mansa.make_mansa, mansa.MANSAOptions)
